/* GPU timestamps around the segments of a recorded command buffer (the
 * device decode step's dispatches, vk_decode.c), summed per kind of
 * segment over the submissions read. Only used when asked for
 * ($SQUISH_VULKAN_PROFILE=1): a step without it records no timestamps. */
#ifndef SQUISH_VK_PROFILE_H
#define SQUISH_VK_PROFILE_H

#include "vk_decode.h"
#include "vk_internal.h"

typedef struct sq_vk_prof sq_vk_prof;

/* Whether $SQUISH_VULKAN_PROFILE is "1". */
int sq_vk_prof_wanted(void);
/* A profiler for up to max_marks segments per submission. On a queue
 * without timestamps (timestampValidBits 0) it records nothing and its
 * note says so. */
sq_status sq_vk_prof_create(sq_vk *vk, uint32_t max_marks, sq_vk_prof **out, sq_err *err);
void sq_vk_prof_free(sq_vk_prof *p);
/* Recording: the start of the command buffer (resets the queries), then
 * one mark after each segment, naming its kind (copied; kinds with the same
 * name are summed). */
void sq_vk_prof_begin(sq_vk_prof *p, VkCommandBuffer cmd);
void sq_vk_prof_mark(sq_vk_prof *p, VkCommandBuffer cmd, const char *kind);
/* After a submission of the recording has completed: adds its segments. */
sq_status sq_vk_prof_collect(sq_vk_prof *p, sq_err *err);
void sq_vk_prof_reset(sq_vk_prof *p);
/* The kinds in order of first mark; *subs: submissions summed; *note:
 * NULL, or why there are no times. */
uint32_t sq_vk_prof_rows(const sq_vk_prof *p, const sq_vk_prof_row **rows, uint32_t *subs, const char **note);

#endif
