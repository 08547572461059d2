/*
 * Server-side copy for the SMB backend (smb_fs.c's copy_range and
 * copy_state): smbc_splice (FSCTL_SRV_COPYCHUNK), and how a copy that
 * libsmbclient silently made through this process is told from one the
 * server made (the bytes this process moved meanwhile).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "distsync/log.h"
#include "smb_fs_int.h"

/* A server-side copy moves about 411 bytes through this process (two IOCTL
 * requests and their replies, measured against Samba 4.17), one done here
 * the range and about 430 more (what it writes: what it reads does not
 * always show): a splice of SPLICE_SURE bytes or more tells by itself;
 * shorter ones (copies along alignments go down to 1 KiB) are summed, less
 * SPLICE_OVERHEAD each, until they reach it. */
#define SPLICE_SURE     4096
#define SPLICE_OVERHEAD 1024
/* Until a splice is known to copy on the server, at most this much of a
 * range is tried first (a fallback reads no more across the link). */
#define SPLICE_PROBE (256u << 10)

/* Bytes this process moved through read- and write-like system calls,
 * sockets included (rchar + wchar of /proc/self/io), or 0 when unknown. A
 * copy through this process both receives and sends the range (Samba's
 * client reads its socket in a way rchar does not always count, but every
 * byte it sends shows in wchar). */
static uint64_t io_bytes(void)
{
    char line[128];
    uint64_t v, sum = 0;
    FILE *f = fopen("/proc/self/io", "re");

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "rchar: %" SCNu64, &v) == 1 || sscanf(line, "wchar: %" SCNu64, &v) == 1)
            sum += v;
    fclose(f);
    return sum;
}

/* Tests: the source opened again through another share of the same
 * directory, which makes libsmbclient copy through this process. */
static SMBCFILE *test_source(struct ds_smb_fs *s, const struct sh *src)
{
    const char *host = strstr(src->url, "://");
    const char *share = host != NULL ? strchr(host + 3, '/') : NULL;  /* "/share/..." */
    const char *rest = share != NULL ? strchr(share + 1, '/') : NULL; /* "/..." */
    char url[4096];
    int n;

    if (rest == NULL) {
        errno = EINVAL;
        return NULL;
    }
    n = snprintf(url, sizeof(url), "%.*s/%s%s", (int)(share - src->url), src->url, s->test_share,
                 rest);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    return ds__smbc.getFunctionOpen(s->c)(s->c, url, O_RDONLY, 0);
}

static int splice_more(off_t n, void *priv)
{
    (void)n;
    (void)priv;
    return 1; /* go on */
}

/*
 * One smbc_splice (FSCTL_SRV_COPYCHUNK) of len bytes from sf, at its
 * offset, to dst->f's. Judges whether it fell back (see ds__smb_fs_copy_range);
 * returns 0 (copied, s->no_splice set when it came through here) or -1
 * (errno; ENOTSUP when the server refuses, s->no_splice set).
 */
static int splice_once(struct ds_smb_fs *s, SMBCFILE *sf, struct sh *dst, size_t len)
{
    uint64_t before = io_bytes(), moved;
    off_t n = ds__smbc.getFunctionSplice(s->c)(s->c, sf, dst->f, (off_t)len, splice_more, NULL);

    s->st.splice_calls++;
    if (n != (off_t)len) {
        int e = n < 0 ? errno : EIO;

        if (e == EOPNOTSUPP || e == ENOTSUP || e == ENOSYS || e == EXDEV) {
            s->no_splice = 1;
            e = ENOTSUP;
        }
        errno = e;
        return -1;
    }
    dst->wrote = 1;
    ds__smb_fs_moved_to(dst, dst->pos + len);
    s->st.bytes_spliced += len;
    moved = before > 0 ? io_bytes() - before : 0;
    if (before > 0 && len < SPLICE_SURE) {
        s->short_len += len;
        s->short_io += moved > SPLICE_OVERHEAD ? moved - SPLICE_OVERHEAD : 0;
    }
    if (before > 0 && ((len >= SPLICE_SURE && moved >= len / 2) ||
                       (s->short_len >= SPLICE_SURE && s->short_io >= s->short_len / 2))) {
        s->st.splice_fallback++;
        s->no_splice = 1;
        ds_log(DS_LOG_WARN,
               "server-side copy fell back to a copy through this process (%" PRIu64
               " bytes moved through it for %zu bytes copied): no more server-side copies in "
               "this session",
               moved, len);
    } else if (len >= SPLICE_SURE) {
        s->splice_sure = 1;
    }
    return 0;
}

/* Judged by splice_once: a fallback seen, or a splice long enough (or
 * short ones adding up to that) copied on the server. */
int ds__smb_fs_copy_state(const ds_fs_t *fs)
{
    const struct ds_smb_fs *s = S(fs);

    if (s->no_splice)
        return -1;
    return s->splice_sure || s->short_len >= SPLICE_SURE ? 1 : 0;
}

/*
 * smbc_splice (FSCTL_SRV_COPYCHUNK) from src at src_off to dst's current
 * end. smbc_splice copies through this process, silently, when the server
 * cannot (across shares, or a server without the ioctl): the bytes this
 * process moved during the call tell (at least half the range means the
 * data came through here; short splices are judged together, see
 * SPLICE_SURE). Such a splice still copied correctly; the next ones are
 * refused (ENOTSUP) so the receiver stops asking. Until a splice of the
 * session is known to have been copied on the server, a range longer than
 * SPLICE_PROBE is copied in two: the probe first; when it fell back, the
 * rest is refused (ENOTSUP), so a fallback reads at most SPLICE_PROBE
 * bytes across the link, whatever the size of the range.
 */
int ds__smb_fs_copy_range(const ds_fs_t *fs, int src_fd, off_t src_off, int dst_fd, size_t len)
{
    struct ds_smb_fs *s = S(fs);
    struct sh *src = get(fs, src_fd), *dst = get(fs, dst_fd);
    SMBCFILE *sf;
    off_t at;
    int rc;

    if (src == NULL || dst == NULL || src->f == NULL || dst->f == NULL)
        return -1;
    if (s->no_splice) {
        errno = ENOTSUP;
        return -1;
    }
    if (dst->wlen > 0 && ds__smb_fs_flush(s, dst) < 0)
        return -1;
    at = ds__smbc.getFunctionLseek(s->c)(s->c, dst->f, 0, SEEK_CUR);
    sf = s->test_share != NULL ? test_source(s, src) : src->f;
    if (at < 0 || sf == NULL || ds__smbc.getFunctionLseek(s->c)(s->c, sf, src_off, SEEK_SET) < 0)
        return -1;
    rc = 0;
    if (!s->splice_sure && len > SPLICE_PROBE) {
        rc = splice_once(s, sf, dst, SPLICE_PROBE);
        if (rc == 0 && s->no_splice) {
            errno = ENOTSUP; /* fell back: the rest is not read through here */
            rc = -1;
        }
        len -= SPLICE_PROBE;
    }
    if (rc == 0)
        rc = splice_once(s, sf, dst, len);
    if (sf != src->f)
        ds__smbc.getFunctionClose(s->c)(s->c, sf);
    if (rc < 0) {
        int e = errno;

        (void)ds__smbc.getFunctionLseek(s->c)(s->c, dst->f, at, SEEK_SET); /* overwritten next */
        ds__smb_fs_moved_to(dst, (uint64_t)at);
        errno = e;
    }
    return rc;
}
