/* id.c: UUIDv7 job ids and their text form. */
#include "common/id.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/bytes.h"

void
cd_random(void *buf, unsigned long n)
{
    uint8_t *p = buf;

    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);

        if (got <= 0)
            continue; /* EINTR; getrandom does not fail once seeded */
        p += got;
        n -= (unsigned long)got;
    }
}

void
cd_id_new(cadre_job_id *id, uint64_t now_ms)
{
    uint8_t ts[8];

    cd_random(id->b, sizeof(id->b));
    cd_put_u64be(ts, now_ms);
    memcpy(id->b, ts + 2, 6);
    id->b[6] = (uint8_t)(0x70 | (id->b[6] & 0x0f)); /* version 7 */
    id->b[8] = (uint8_t)(0x80 | (id->b[8] & 0x3f)); /* variant */
}

int
cd_id_is_zero(const cadre_job_id *id)
{
    static const cadre_job_id zero;

    return memcmp(id, &zero, sizeof(zero)) == 0;
}

void
cadre_job_id_format(const cadre_job_id *id, char *buf)
{
    static const char hex[] = "0123456789abcdef";
    char             *o = buf;

    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[id->b[i] >> 4];
        *o++ = hex[id->b[i] & 15];
    }
    *o = '\0';
}

int
cadre_job_id_parse(const char *s, cadre_job_id *id)
{
    cadre_job_id out;
    int          n = 0;

    if (s == NULL || strlen(s) != CD_ID_TEXT_LEN)
        return CADRE_EINVAL;
    for (int i = 0; i < CD_ID_TEXT_LEN; i++) {
        int hi, lo;

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return CADRE_EINVAL;
            continue;
        }
        hi = cd_hex_value(s[i]);
        lo = cd_hex_value(s[i + 1]);
        if (hi < 0 || lo < 0)
            return CADRE_EINVAL;
        out.b[n++] = (uint8_t)(hi << 4 | lo);
        i++;
    }
    *id = out;
    return CADRE_OK;
}
