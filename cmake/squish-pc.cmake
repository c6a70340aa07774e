# Writes squish.pc at install time, so that its prefix is the one installed
# into (cmake --install --prefix P), not the one configured.
# In: SQUISH_PC_IN, SQUISH_PC_OUT, PROJECT_VERSION, LIBDIR, INCLUDEDIR
# (relative to the prefix, or absolute); CMAKE_INSTALL_PREFIX (set by the
# install step).
set(SQUISH_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
foreach(d LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${${d}}")
    set(SQUISH_PC_${d} "${${d}}")
  else()
    set(SQUISH_PC_${d} "\${prefix}/${${d}}")
  endif()
endforeach()
configure_file("${SQUISH_PC_IN}" "${SQUISH_PC_OUT}" @ONLY)
