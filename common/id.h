/* id.h: job ids: 16 bytes in the UUIDv7 layout (48-bit Unix ms, version,
 * random), so ids sort by creation time; text form is the usual uuid. */
#ifndef CD_ID_H
#define CD_ID_H

#include <stdint.h>

#include "cadre/cadre.h"

#define CD_ID_LEN 16
#define CD_ID_TEXT_LEN 36

/* Fills id from now_ms and the OS random source. Thread-safe. */
void cd_id_new(cadre_job_id *id, uint64_t now_ms);
int  cd_id_is_zero(const cadre_job_id *id);
/* Fills buf with n random bytes from the OS (getrandom). */
void cd_random(void *buf, unsigned long n);

#endif
