/* keys.c: generating, deriving, saving and loading cadre keys (libsodium).
 * Key files are one text line written atomically with mode 0600; this file
 * does not decide where they live (common/path.h) nor which roles a listener
 * accepts (proto/wire.h). Every buffer that held key material is wiped. */
#include "crypto/keys.h"

#include "common/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* crypto_kdf contexts are exactly 8 bytes; changing it changes every derived
 * key, so it is versioned like the file format. */
#define KEYS_KDF_CONTEXT "cadre-v1"
_Static_assert(sizeof(KEYS_KDF_CONTEXT) - 1 == crypto_kdf_CONTEXTBYTES,
               "kdf context must be 8 bytes");
_Static_assert(KEYS_LEN == crypto_kdf_KEYBYTES, "master key size");
_Static_assert(KEYS_LEN >= crypto_kdf_BYTES_MIN &&
                   KEYS_LEN <= crypto_kdf_BYTES_MAX,
               "derived key size");

#define KEYS_MAGIC "cadre-key"
#define KEYS_FILE_VERSION "v1"
/* A key line is about 90 bytes; anything much longer is not a key file. */
#define KEYS_FILE_MAX 256

static const char *const keys_role_names[KEYS_ROLE_COUNT] = {
    [KEYS_ROLE_MASTER] = "master", [KEYS_ROLE_NODE] = "node",
    [KEYS_ROLE_WORKER] = "worker", [KEYS_ROLE_CLIENT] = "client",
    [KEYS_ROLE_APP] = "app",
};

int
keys_init(void)
{
    /* sodium_init is idempotent and thread-safe: 0 first time, 1 after. */
    if (sodium_init() < 0)
        return CADRE_EINTERNAL;
    return CADRE_OK;
}

const char *
keys_role_name(int role)
{
    if (role < 0 || role >= KEYS_ROLE_COUNT)
        return "unknown";
    return keys_role_names[role];
}

int
keys_role_parse(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < KEYS_ROLE_COUNT; i++)
        if (strcmp(name, keys_role_names[i]) == 0)
            return i;
    return -1;
}

void
keys_generate(keys_key *out)
{
    randombytes_buf(out->b, sizeof(out->b));
}

void
keys_derive(const keys_key *master, int role, keys_key *out)
{
    keys_key tmp; /* out may alias master */

    crypto_kdf_derive_from_key(tmp.b, sizeof(tmp.b), (uint64_t)role,
                               KEYS_KDF_CONTEXT, master->b);
    memcpy(out->b, tmp.b, sizeof(tmp.b));
    sodium_memzero(&tmp, sizeof(tmp));
}

void
keys_wipe(keys_key *k)
{
    if (k != NULL)
        sodium_memzero(k, sizeof(*k));
}

void
keys_format(int role, const keys_key *k, char *buf, size_t len)
{
    /* Hex straight into buf so that no other buffer holds the key. */
    int n = snprintf(buf, len, "%s %s %s ", KEYS_MAGIC, KEYS_FILE_VERSION,
                     keys_role_name(role));

    if (n < 0 || (size_t)n + 2 * KEYS_LEN + 2 > len)
        return; /* buf too small: left truncated, as snprintf would */
    sodium_bin2hex(buf + n, len - (size_t)n, k->b, KEYS_LEN);
    buf[n + 2 * KEYS_LEN] = '\n';
    buf[n + 2 * KEYS_LEN + 1] = '\0';
}

/* Writes all of p to fd; returns 0 or an errno value. */
static int
keys_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsyncs the directory holding path so that the rename is durable. */
static int
keys_sync_dir(const char *path)
{
    char        dir[4096];
    const char *slash = strrchr(path, '/');
    int         fd, e = 0;

    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    if (fsync(fd) != 0)
        e = errno;
    close(fd);
    return e;
}

int
keys_save(const char *path, int role, const keys_key *k, cd_err *err)
{
    char        line[128];
    char        tmp[4096];
    const char *step;
    int         fd = -1, e = 0;

    if (role < 0 || role >= KEYS_ROLE_COUNT)
        return cd_err_set(err, CADRE_EINVAL, "save key file %s: bad role %d",
                          path, role);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >=
        sizeof(tmp))
        return cd_err_set(err, CADRE_EIO, "save key file %s: %s", path,
                          strerror(ENAMETOOLONG));
    /* mkstemp creates the file 0600 (O_EXCL), so the key is never readable
     * by others, not even for a moment; fchmod guards against odd umasks. */
    step = "create temp file";
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        goto fail;
    }
    step = "chmod";
    if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
        e = errno;
        goto fail_unlink;
    }
    keys_format(role, k, line, sizeof(line));
    step = "write";
    e = keys_write_all(fd, line, strlen(line));
    sodium_memzero(line, sizeof(line));
    if (e != 0)
        goto fail_unlink;
    step = "fsync";
    if (fsync(fd) != 0) {
        e = errno;
        goto fail_unlink;
    }
    step = "close";
    if (close(fd) != 0) {
        fd = -1;
        e = errno;
        goto fail_unlink;
    }
    fd = -1;
    step = "rename";
    if (rename(tmp, path) != 0) {
        e = errno;
        goto fail_unlink;
    }
    step = "fsync directory";
    e = keys_sync_dir(path);
    if (e != 0)
        goto fail; /* the file is in place; only its durability is unsure */
    return CADRE_OK;

fail_unlink:
    if (fd >= 0)
        close(fd);
    fd = -1;
    unlink(tmp);
fail:
    return cd_err_set(err, CADRE_EIO, "save key file %s: %s: %s", path, step,
                      strerror(e));
}

/* Parses one key line (NUL-terminated, trailing newline allowed) into *role
 * and *k. Returns CADRE_EINVAL with a reason (no path) in err. */
static int
keys_parse(const char *s, int *role, keys_key *k, cd_err *err)
{
    static const char expect[] =
        "expected 'cadre-key v1 <master|node|worker|client|app> <64 hex "
        "digits>'";
    char        word[16];
    const char *p = s;
    size_t      n;
    keys_key    out;
    int         r;

    if (strncmp(p, KEYS_MAGIC " ", sizeof(KEYS_MAGIC)) != 0)
        return cd_err_set(err, CADRE_EINVAL, "not a cadre key file (%s)",
                          expect);
    p += sizeof(KEYS_MAGIC);
    n = strcspn(p, " \n");
    if (n != strlen(KEYS_FILE_VERSION) || strncmp(p, KEYS_FILE_VERSION, n) != 0)
        return cd_err_set(err, CADRE_EINVAL,
                          "unsupported key file version '%.*s' (this build "
                          "reads " KEYS_FILE_VERSION ")",
                          (int)(n > 16 ? 16 : n), p);
    p += n;
    if (*p++ != ' ')
        return cd_err_set(err, CADRE_EINVAL, "missing role (%s)", expect);
    n = strcspn(p, " \n");
    if (n == 0 || n >= sizeof(word))
        return cd_err_set(err, CADRE_EINVAL, "bad role (%s)", expect);
    memcpy(word, p, n);
    word[n] = '\0';
    r = keys_role_parse(word);
    if (r < 0)
        return cd_err_set(err, CADRE_EINVAL,
                          "unknown role '%s' (expected master, node, worker "
                          "or client)",
                          word);
    p += n;
    if (*p++ != ' ')
        return cd_err_set(err, CADRE_EINVAL, "missing key (%s)", expect);
    for (size_t i = 0; i < KEYS_LEN; i++) {
        int hi = cd_hex_value(p[2 * i]);
        int lo = hi < 0 ? -1 : cd_hex_value(p[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            sodium_memzero(&out, sizeof(out));
            return cd_err_set(err, CADRE_EINVAL,
                              "key is not 64 hex digits (%s)", expect);
        }
        out.b[i] = (uint8_t)(hi << 4 | lo);
    }
    p += 2 * KEYS_LEN;
    /* One line: an optional newline (CRLF tolerated), nothing after. */
    if (*p == '\r')
        p++;
    if (*p == '\n')
        p++;
    if (*p != '\0') {
        sodium_memzero(&out, sizeof(out));
        return cd_err_set(err, CADRE_EINVAL,
                          "unexpected text after the key (%s)", expect);
    }
    *role = r;
    memcpy(k, &out, sizeof(out));
    sodium_memzero(&out, sizeof(out));
    return CADRE_OK;
}

int
keys_load(const char *path, int *role, keys_key *k, cd_err *err)
{
    char    buf[KEYS_FILE_MAX + 1];
    size_t  got = 0;
    int     fd, rc;
    ssize_t r;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return cd_err_set(err, CADRE_ENOTFOUND, "key file %s: not found",
                              path);
        return cd_err_set(err, CADRE_EIO, "key file %s: open: %s", path,
                          strerror(errno));
    }
    /* Read at most one byte past the limit, to tell "too long" apart. */
    while (got < sizeof(buf) - 1) {
        r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = errno;
            close(fd);
            sodium_memzero(buf, sizeof(buf));
            return cd_err_set(err, CADRE_EIO, "key file %s: read: %s", path,
                              strerror(rc));
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    if (got == sizeof(buf) - 1)
        rc = cd_err_set(err, CADRE_EINVAL,
                        "not a cadre key file (over %d bytes; expected "
                        "'cadre-key v1 ...')",
                        KEYS_FILE_MAX);
    else if (memchr(buf, '\0', got) != NULL)
        rc = cd_err_set(err, CADRE_EINVAL,
                        "not a cadre key file (binary data; expected "
                        "'cadre-key v1 ...')");
    else
        rc = keys_parse(buf, role, k, err);
    sodium_memzero(buf, sizeof(buf));
    if (rc != CADRE_OK)
        return cd_err_wrap(err, "key file %s", path);
    return CADRE_OK;
}

int
keys_load_for(const char *path, int want_role, keys_key *k, cd_err *err)
{
    keys_key key;
    int      role, rc;

    if (want_role < 0 || want_role >= KEYS_ROLE_COUNT)
        return cd_err_set(err, CADRE_EINVAL, "key file %s: bad role %d", path,
                          want_role);
    rc = keys_load(path, &role, &key, err);
    if (rc != CADRE_OK)
        return rc;
    if (role == want_role) {
        memcpy(k, &key, sizeof(key));
    } else if (role == KEYS_ROLE_MASTER && want_role != KEYS_ROLE_APP) {
        keys_derive(&key, want_role, k);
    } else {
        sodium_memzero(&key, sizeof(key));
        return cd_err_set(err, CADRE_EAUTH,
                          "key file %s: holds the %s key, not the %s key or "
                          "the master key",
                          path, keys_role_name(role),
                          keys_role_name(want_role));
    }
    sodium_memzero(&key, sizeof(key));
    return CADRE_OK;
}
