/* Clears linalg_dot_tile.h's parameters for the next ISA's instance. */
#undef TILE_ATTR
#undef VT
#undef VW
#undef V_ZERO
#undef V_LOAD
#undef V_BCAST
#undef V_FMA
#undef V_ADD
#undef V_STORE
#undef TILE_LANE
#undef TILE_G
#undef TILE_ONE
#undef TILE_BODY
#undef TILE_R4_64
#undef TILE_R4
#undef TILE_R1
