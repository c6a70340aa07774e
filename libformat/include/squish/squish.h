/* The whole public API of libsquish in one include:
 *   #include <squish/squish.h>
 * (pkg-config --cflags --libs squish). */
#ifndef SQUISH_SQUISH_H
#define SQUISH_SQUISH_H

#include "squish/version.h"
#include "squish/error.h"
#include "squish/codec.h"
#include "squish/container.h"
#include "squish/fileio.h"
#include "squish/fp.h"
#include "squish/hash.h"
#include "squish/hf_quant.h"
#include "squish/llama_names.h"
#include "squish/model.h"
#include "squish/bundle.h"

#endif
