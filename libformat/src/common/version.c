/* The library's own version, compiled in: compare with the headers' macros. */
#include "squish/version.h"

unsigned sq_library_version(void) { return SQUISH_VERSION_NUMBER; }

const char *sq_library_version_string(void) { return SQUISH_VERSION_STRING; }
