/* Temporary-file registry for signal cleanup (internal). */
#ifndef SQUISH_TEMPFILES_H
#define SQUISH_TEMPFILES_H

/* Returns a slot (>= 0) or -1 if the table is full or the path too long. */
int sq_temp_register(const char *path);
void sq_temp_release(int slot);

#endif
