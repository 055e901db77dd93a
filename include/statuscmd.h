/* statuscmd.h - `ekycfs status [--json] MOUNTPOINT`: read the mount's
 * control file and print it for people or as JSON. */
#ifndef EKYCFS_STATUSCMD_H
#define EKYCFS_STATUSCMD_H

#include <stdbool.h>
#include <stdio.h>

/* Print the status of the ekycfs mounted at mnt to out. Returns 0, or
 * -errno with a one-line message on stderr (-ENOENT: not an ekycfs mount). */
__attribute__((warn_unused_result)) int status_command(const char *mnt, bool json, FILE *out);

/* Convert control-file text to the chosen format (exposed for tests).
 * Returns 0 or -EINVAL for text it does not understand. */
__attribute__((warn_unused_result)) int status_format(const char *text, bool json, FILE *out);

#endif
