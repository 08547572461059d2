/*
 * Retained versions: a chunk store in SQLite (see include/distsync/retain.h).
 *
 * Why SQLite rather than pack files, for ~1,000,000 versions and ~100 GB:
 * ~1.6 M chunks of ~64 KiB are well within what SQLite handles; a put is
 * one transaction, so a crash leaves no half-written version and no
 * reference to a missing chunk without any recovery code of ours; deleted
 * chunks' pages are reused in place (and returned to the file system by
 * incremental vacuum), where pack files would need a repacking pass. Chunk
 * metadata (chunk) and chunk bytes (blob) live in separate tables so that
 * usage reports and garbage collection scan ~40 bytes per chunk, never the
 * payload. The cost is write amplification: WAL writes each new chunk
 * twice (WAL, then checkpoint), acceptable for content that changes daily.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>
#include <zstd.h>

#include "distsync/digest.h"
#include "distsync/error.h"
#include "distsync/log.h"
#include "distsync/retain.h"

#define SCHEMA_VERSION 1
#define ZSTD_LEVEL     3
#define CHUNK_LEN_MAX  (64u * 1024 * 1024)
#define CODEC_RAW      0
#define CODEC_ZSTD     1

struct ds_retain {
    sqlite3 *db;
    char *path;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    uint8_t *buf; /* raw chunk buffer for put */
    size_t bufcap;
    uint8_t *zbuf; /* compressed chunk buffer for put */
    size_t zbufcap;
    int batch; /* a ds_retain_batch_begin transaction is open */
    /* a reader's two statements, kept prepared between readers (parsing
     * them was most of an open: 5% of a cold sync's CPU); NULL: none kept */
    sqlite3_stmt *load_st, *get_st;
    size_t readers; /* readers open on this handle */
};

#define SQL_LOAD "SELECT size, chunks FROM version WHERE sha256 = ?1"
#define SQL_GET                                                                                    \
    "SELECT c.raw_len, c.codec, b.data FROM chunk c JOIN blob b ON b.id = c.id WHERE c.hash = ?1"

struct ds_retain_reader {
    ds_retain_t *r;
    sqlite3_stmt *get;
    uint8_t sha256[DS_SHA256_LEN];
    uint64_t size;
    size_t n;
    uint8_t *recs;  /* n packed chunk records */
    uint64_t *offs; /* n + 1 chunk start offsets */
    size_t cached;  /* index of the chunk in cbuf, or n */
    uint8_t *cbuf;
    size_t ccap;
    int verify;
    ds_sha256_t sha;
    uint64_t hashed; /* bytes hashed in order from 0 */
    int hash_done;
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS chunk(id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE,"
    " raw_len INTEGER NOT NULL, zlen INTEGER NOT NULL, codec INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS blob(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS version(id INTEGER PRIMARY KEY, sha256 BLOB NOT NULL UNIQUE,"
    " size INTEGER NOT NULL, chunks BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS ref(chunk_id INTEGER NOT NULL, version_id INTEGER NOT NULL,"
    " PRIMARY KEY(chunk_id, version_id)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS ref_version ON ref(version_id);";

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int db_err(ds_retain_t *r, const char *what)
{
    ds_log(DS_LOG_ERROR, "retain store %s: %s: %s", r->path, what, sqlite3_errmsg(r->db));
    return DS_ECATALOG;
}

static int exec(ds_retain_t *r, const char *sql)
{
    if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_err(r, sql);
    return 0;
}

/* Ends a transaction (BEGIN IMMEDIATE), or put's savepoint inside a batch
 * (sp): rc < 0 rolls it back; rc 0 commits it, a failure reported (and
 * rolled back); rc > 0 (nothing written) commits it quietly. Returns rc or
 * the commit's failure. */
static int tx_end(ds_retain_t *r, int sp, int rc)
{
    if (rc == 0)
        rc = exec(r, sp ? "RELEASE put" : "COMMIT");
    else if (rc > 0)
        sqlite3_exec(r->db, sp ? "RELEASE put" : "COMMIT", NULL, NULL, NULL);
    if (rc < 0)
        sqlite3_exec(r->db, sp ? "ROLLBACK TO put; RELEASE put" : "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int prepare(ds_retain_t *r, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(r->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_err(r, sql);
    return 0;
}

/* The statement kept in *keep (taken: *keep is NULL until given back),
 * else sql prepared anew. */
static int take(ds_retain_t *r, sqlite3_stmt **keep, const char *sql, sqlite3_stmt **st)
{
    if (*keep != NULL) {
        *st = *keep;
        *keep = NULL;
        return 0;
    }
    return prepare(r, sql, st);
}

/* Gives st back to *keep, reset, or finalizes it when one is kept. */
static void give(sqlite3_stmt **keep, sqlite3_stmt *st)
{
    if (st == NULL)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (*keep == NULL)
        *keep = st;
    else
        sqlite3_finalize(st);
}

static int grow(uint8_t **p, size_t *cap, size_t need)
{
    uint8_t *np;

    if (*cap >= need)
        return 0;
    np = realloc(*p, need);
    if (np == NULL)
        return DS_ENOMEM;
    *p = np;
    *cap = need;
    return 0;
}

static int init_schema(ds_retain_t *r)
{
    sqlite3_stmt *st = NULL;
    int rc, ver;

    sqlite3_busy_timeout(r->db, 30000);
    /* Per connection; no lock taken. secure_delete: Debian's SQLite zeroes
     * every page it frees, and a chunk's pages hold only what the store
     * held (no secret): half of a gc's time went to writing the zeros. */
    rc = exec(r, "PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=67108864;"
                 " PRAGMA secure_delete=OFF;");
    if (rc < 0)
        return rc;
    rc = prepare(r, "PRAGMA user_version", &st);
    if (rc < 0)
        return rc;
    ver = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (ver < 0)
        return db_err(r, "reading user_version");
    if (ver > SCHEMA_VERSION) {
        ds_log(DS_LOG_ERROR, "retain store %s: schema %d is newer than this distsync (%d)", r->path,
               ver, SCHEMA_VERSION);
        return DS_ESCHEMA;
    }
    if (ver == SCHEMA_VERSION)
        return 0;
    /* A new database: page_size and auto_vacuum take effect only before
     * its first table, and WAL stays set in the file. Not run on every
     * open: auto_vacuum takes the write lock, so each worker's open
     * waited behind the retain writer (SQLite's busy sleeps). */
    rc = exec(r, "PRAGMA page_size=16384; PRAGMA auto_vacuum=INCREMENTAL;"
                 "PRAGMA journal_mode=WAL;");
    if (rc == 0)
        rc = exec(r, schema_sql);
    if (rc == 0)
        rc = exec(r, "PRAGMA user_version=1");
    return rc;
}

int ds_retain_open(const char *dir, ds_retain_t **out)
{
    ds_retain_t *r = NULL;
    size_t len = strlen(dir);
    struct stat st;
    int rc;

    *out = NULL;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno; /* not logged: every caller reports it with dir */
    if (stat(dir, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR; /* else SQLite says only "unable to open database file" */
    r = calloc(1, sizeof(*r));
    if (r == NULL || (r->path = malloc(len + sizeof("/retain.db"))) == NULL) {
        rc = DS_ENOMEM;
        goto out;
    }
    memcpy(r->path, dir, len);
    memcpy(r->path + len, "/retain.db", sizeof("/retain.db"));
    r->cctx = ZSTD_createCCtx();
    r->dctx = ZSTD_createDCtx();
    if (r->cctx == NULL || r->dctx == NULL) {
        rc = DS_ENOMEM;
        goto out;
    }
    if (sqlite3_open_v2(r->path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = db_err(r, "open");
        goto out;
    }
    rc = init_schema(r);
out:
    if (rc < 0)
        ds_retain_close(r);
    else
        *out = r;
    return rc;
}

void ds_retain_close(ds_retain_t *r)
{
    if (r == NULL)
        return;
    sqlite3_finalize(r->load_st);
    sqlite3_finalize(r->get_st);
    sqlite3_close(r->db);
    ZSTD_freeCCtx(r->cctx);
    ZSTD_freeDCtx(r->dctx);
    free(r->buf);
    free(r->zbuf);
    free(r->path);
    free(r);
}

int ds_retain_idle(ds_retain_t *r)
{
    /* every statement is finalized or reset (the two kept) when its call
     * or its reader ends: a busy one holds a read snapshot */
    for (sqlite3_stmt *st = sqlite3_next_stmt(r->db, NULL); st; st = sqlite3_next_stmt(r->db, st))
        if (sqlite3_stmt_busy(st))
            return 0;
    return !r->batch && r->readers == 0 && sqlite3_get_autocommit(r->db);
}

/* Looks up a version: 1 (and its row id) if present, 0 if absent, or <0. */
static int find_version(ds_retain_t *r, const uint8_t *sha, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(r, "SELECT id FROM version WHERE sha256 = ?1", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, sha, DS_SHA256_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (id != NULL)
            *id = sqlite3_column_int64(st, 0);
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = db_err(r, "looking up a version");
    }
    sqlite3_finalize(st);
    return rc;
}

int ds_retain_has(ds_retain_t *r, const uint8_t sha256[DS_SHA256_LEN])
{
    return find_version(r, sha256, NULL);
}

static int check_chunk_list(const uint8_t *chunks, size_t n, uint64_t size)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < n; i++) {
        uint32_t len = get_le32(chunks + i * DS_RETAIN_REC_LEN + DS_XXH128_LEN);

        if (len == 0 || len > CHUNK_LEN_MAX)
            return DS_EUSAGE;
        sum += len;
    }
    return sum == size ? 0 : DS_EUSAGE;
}

/* Reads exactly len bytes at off; DS_ECHANGED on a short file. */
static int read_full(int fd, uint64_t off, uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, (off_t)off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return DS_ECHANGED;
        buf += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* Stores the chunk in r->buf (len bytes) if absent; sets *id either way. */
static int store_chunk(ds_retain_t *r, sqlite3_stmt *ins_chunk, sqlite3_stmt *ins_blob,
                       const uint8_t *hash, size_t len, int64_t *id)
{
    size_t bound = ZSTD_compressBound(len), zlen;
    const void *data = r->buf;
    int codec = CODEC_RAW, rc;

    rc = grow(&r->zbuf, &r->zbufcap, bound);
    if (rc < 0)
        return rc;
    zlen = ZSTD_compressCCtx(r->cctx, r->zbuf, bound, r->buf, len, ZSTD_LEVEL);
    /* Keep it compressed only when that saves at least 1/32. */
    if (!ZSTD_isError(zlen) && zlen < len - len / 32) {
        data = r->zbuf;
        codec = CODEC_ZSTD;
    } else {
        zlen = len;
    }
    sqlite3_bind_blob(ins_chunk, 1, hash, DS_XXH128_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(ins_chunk, 2, (sqlite3_int64)len);
    sqlite3_bind_int64(ins_chunk, 3, (sqlite3_int64)zlen);
    sqlite3_bind_int(ins_chunk, 4, codec);
    rc = sqlite3_step(ins_chunk);
    sqlite3_reset(ins_chunk);
    if (rc != SQLITE_DONE)
        return db_err(r, "inserting a chunk");
    *id = sqlite3_last_insert_rowid(r->db);
    sqlite3_bind_int64(ins_blob, 1, *id);
    sqlite3_bind_blob(ins_blob, 2, data, (int)zlen, SQLITE_STATIC);
    rc = sqlite3_step(ins_blob);
    sqlite3_reset(ins_blob);
    return rc == SQLITE_DONE ? 0 : db_err(r, "inserting chunk bytes");
}

struct put_ctx {
    ds_retain_t *r;
    int fd;
    int flags;
    sqlite3_stmt *find, *ins_chunk, *ins_blob, *ins_ref;
    ds_sha256_t sha;
};

/* Handles chunk i at offset off for version vid. */
static int put_one(struct put_ctx *p, const uint8_t *rec, uint64_t off, int64_t vid)
{
    ds_retain_t *r = p->r;
    uint32_t len = get_le32(rec + DS_XXH128_LEN);
    uint8_t h[DS_XXH128_LEN];
    int64_t cid = -1;
    int rc;

    sqlite3_bind_blob(p->find, 1, rec, DS_XXH128_LEN, SQLITE_STATIC);
    rc = sqlite3_step(p->find);
    if (rc == SQLITE_ROW)
        cid = sqlite3_column_int64(p->find, 0);
    sqlite3_reset(p->find);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_err(r, "looking up a chunk");
    if (cid < 0 || (p->flags & DS_RETAIN_PUT_VERIFY)) {
        rc = grow(&r->buf, &r->bufcap, len);
        if (rc == 0)
            rc = read_full(p->fd, off, r->buf, len);
        if (rc < 0)
            return rc;
        ds_xxh128(r->buf, len, h);
        if (memcmp(h, rec, DS_XXH128_LEN) != 0)
            return DS_ECHANGED;
        if (p->flags & DS_RETAIN_PUT_VERIFY)
            ds_sha256_update(&p->sha, r->buf, len);
    }
    if (cid < 0) {
        rc = store_chunk(r, p->ins_chunk, p->ins_blob, rec, len, &cid);
        if (rc < 0)
            return rc;
    }
    sqlite3_bind_int64(p->ins_ref, 1, cid);
    sqlite3_bind_int64(p->ins_ref, 2, vid);
    rc = sqlite3_step(p->ins_ref);
    sqlite3_reset(p->ins_ref);
    return rc == SQLITE_DONE ? 0 : db_err(r, "inserting a chunk reference");
}

static int insert_version(ds_retain_t *r, const uint8_t *sha, uint64_t size, const uint8_t *chunks,
                          size_t n, int64_t *vid)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(r, "INSERT INTO version(sha256, size, chunks) VALUES(?1, ?2, ?3)", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, sha, DS_SHA256_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
    sqlite3_bind_blob64(st, 3, n ? (const void *)chunks : "", n * DS_RETAIN_REC_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(r, "inserting a version");
    *vid = sqlite3_last_insert_rowid(r->db);
    sqlite3_finalize(st);
    return rc;
}

static int put_all(struct put_ctx *p, const uint8_t *sha, uint64_t size, const uint8_t *chunks,
                   size_t n)
{
    uint8_t got[DS_SHA256_LEN];
    uint64_t off = 0;
    int64_t vid;
    int rc;

    rc = insert_version(p->r, sha, size, chunks, n, &vid);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = put_one(p, chunks + i * DS_RETAIN_REC_LEN, off, vid);
        off += get_le32(chunks + i * DS_RETAIN_REC_LEN + DS_XXH128_LEN);
    }
    if (rc == 0 && (p->flags & DS_RETAIN_PUT_VERIFY)) {
        ds_sha256_final(&p->sha, got);
        if (memcmp(got, sha, DS_SHA256_LEN) != 0)
            rc = DS_ECHANGED;
    }
    return rc;
}

int ds_retain_put(ds_retain_t *r, int fd, const uint8_t sha256[DS_SHA256_LEN], uint64_t size,
                  const uint8_t *chunks, size_t nchunks, int flags)
{
    struct put_ctx p = {.r = r, .fd = fd, .flags = flags};
    int rc, in_tx = 0;

    rc = check_chunk_list(chunks, nchunks, size);
    if (rc < 0) {
        ds_log(DS_LOG_ERROR, "retain store %s: chunk list does not add up to size %llu", r->path,
               (unsigned long long)size);
        return rc;
    }
    if ((flags & DS_RETAIN_PUT_VERIFY) && (rc = ds_sha256_init(&p.sha)) < 0)
        return rc;
    rc = exec(r, r->batch ? "SAVEPOINT put" : "BEGIN IMMEDIATE");
    if (rc < 0)
        goto out;
    in_tx = 1;
    rc = find_version(r, sha256, NULL);
    if (rc != 0)
        goto out; /* present (rc 1) or error */
    if ((rc = prepare(r, "SELECT id FROM chunk WHERE hash = ?1", &p.find)) < 0 ||
        (rc = prepare(r, "INSERT INTO chunk(hash, raw_len, zlen, codec) VALUES(?1, ?2, ?3, ?4)",
                      &p.ins_chunk)) < 0 ||
        (rc = prepare(r, "INSERT INTO blob(id, data) VALUES(?1, ?2)", &p.ins_blob)) < 0 ||
        (rc = prepare(r, "INSERT OR IGNORE INTO ref(chunk_id, version_id) VALUES(?1, ?2)",
                      &p.ins_ref)) < 0)
        goto out;
    rc = put_all(&p, sha256, size, chunks, nchunks);
out:
    if (in_tx) /* in a batch, this version's rows only: the batch stays open */
        rc = tx_end(r, r->batch, rc);
    if (rc == DS_ECHANGED)
        ds_log(DS_LOG_ERROR, "retain store %s: source file changed since it was chunked", r->path);
    sqlite3_finalize(p.find);
    sqlite3_finalize(p.ins_chunk);
    sqlite3_finalize(p.ins_blob);
    sqlite3_finalize(p.ins_ref);
    ds_sha256_close(&p.sha);
    return rc < 0 ? rc : 0;
}

int ds_retain_batch_begin(ds_retain_t *r)
{
    int rc;

    if (r->batch)
        return DS_EUSAGE;
    rc = exec(r, "BEGIN IMMEDIATE");
    if (rc == 0)
        r->batch = 1;
    return rc;
}

int ds_retain_batch_end(ds_retain_t *r)
{
    if (!r->batch)
        return 0;
    r->batch = 0;
    return tx_end(r, 0, 0);
}

static int load_version(ds_retain_reader_t *rd)
{
    ds_retain_t *r = rd->r;
    sqlite3_stmt *st = NULL;
    const void *blob;
    size_t nbytes;
    int rc = take(r, &r->load_st, SQL_LOAD, &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_blob(st, 1, rd->sha256, DS_SHA256_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = rc == SQLITE_DONE ? DS_ENOTFOUND : db_err(r, "reading a version");
        goto out;
    }
    rd->size = (uint64_t)sqlite3_column_int64(st, 0);
    blob = sqlite3_column_blob(st, 1);
    nbytes = (size_t)sqlite3_column_bytes(st, 1);
    rd->n = nbytes / DS_RETAIN_REC_LEN;
    rc = DS_ENOMEM;
    rd->recs = malloc(nbytes ? nbytes : 1);
    rd->offs = malloc((rd->n + 1) * sizeof(*rd->offs));
    if (rd->recs == NULL || rd->offs == NULL)
        goto out;
    if (nbytes)
        memcpy(rd->recs, blob, nbytes);
    rd->offs[0] = 0;
    for (size_t i = 0; i < rd->n; i++)
        rd->offs[i + 1] = rd->offs[i] + get_le32(rd->recs + i * DS_RETAIN_REC_LEN + 16);
    rc = 0;
    if (nbytes % DS_RETAIN_REC_LEN != 0 || rd->offs[rd->n] != rd->size)
        rc = DS_ECORRUPT;
out:
    give(&r->load_st, st);
    return rc;
}

int ds_retain_open_version(ds_retain_t *r, const uint8_t sha256[DS_SHA256_LEN], int flags,
                           ds_retain_reader_t **out)
{
    ds_retain_reader_t *rd = calloc(1, sizeof(*rd));
    char hex[2 * DS_SHA256_LEN + 1];
    int rc;

    *out = NULL;
    if (rd == NULL)
        return DS_ENOMEM;
    rd->r = r;
    memcpy(rd->sha256, sha256, DS_SHA256_LEN);
    rd->verify = (flags & DS_RETAIN_READ_VERIFY) != 0;
    r->readers++;
    rc = load_version(rd);
    if (rc == 0)
        rc = take(r, &r->get_st, SQL_GET, &rd->get);
    if (rc == 0 && rd->verify)
        rc = ds_sha256_init(&rd->sha);
    rd->cached = rd->n;
    if (rc == DS_ECORRUPT) {
        ds_hex(sha256, DS_SHA256_LEN, hex);
        ds_log(DS_LOG_ERROR, "retain store %s: version %s: chunk list is corrupt", r->path, hex);
    }
    if (rc < 0)
        ds_retain_reader_free(rd);
    else
        *out = rd;
    return rc;
}

uint64_t ds_retain_reader_size(const ds_retain_reader_t *rd)
{
    return rd->size;
}

const uint8_t *ds_retain_reader_chunks(const ds_retain_reader_t *rd, size_t *n)
{
    *n = rd->n;
    return rd->recs;
}

void ds_retain_reader_free(ds_retain_reader_t *rd)
{
    if (rd == NULL)
        return;
    give(&rd->r->get_st, rd->get);
    rd->r->readers--;
    ds_sha256_close(&rd->sha);
    free(rd->recs);
    free(rd->offs);
    free(rd->cbuf);
    free(rd);
}

static int chunk_corrupt(ds_retain_reader_t *rd, size_t i, const char *why)
{
    char vhex[2 * DS_SHA256_LEN + 1], chex[2 * DS_XXH128_LEN + 1];

    ds_hex(rd->sha256, DS_SHA256_LEN, vhex);
    ds_hex(rd->recs + i * DS_RETAIN_REC_LEN, DS_XXH128_LEN, chex);
    ds_log(DS_LOG_ERROR, "retain store %s: version %s: chunk %s at offset %llu: %s", rd->r->path,
           vhex, chex, (unsigned long long)rd->offs[i], why);
    return DS_ECORRUPT;
}

/* Decodes stored chunk bytes into rd->cbuf and checks the XXH3-128. */
static int decode_chunk(ds_retain_reader_t *rd, size_t i, int codec, const void *data, size_t dlen)
{
    const uint8_t *rec = rd->recs + i * DS_RETAIN_REC_LEN;
    size_t len = (size_t)(rd->offs[i + 1] - rd->offs[i]), got = dlen;
    uint8_t h[DS_XXH128_LEN];
    int rc = grow(&rd->cbuf, &rd->ccap, len);

    if (rc < 0)
        return rc;
    if (codec == CODEC_ZSTD)
        got = ZSTD_decompressDCtx(rd->r->dctx, rd->cbuf, len, data, dlen);
    else if (codec == CODEC_RAW && dlen == len)
        memcpy(rd->cbuf, data, len);
    else
        return chunk_corrupt(rd, i, "unknown codec or bad length");
    if (ZSTD_isError(got) || got != len)
        return chunk_corrupt(rd, i, "does not decompress");
    ds_xxh128(rd->cbuf, len, h);
    if (memcmp(h, rec, DS_XXH128_LEN) != 0)
        return chunk_corrupt(rd, i, "XXH3-128 mismatch");
    return 0;
}

static int load_chunk(ds_retain_reader_t *rd, size_t i)
{
    const uint8_t *rec = rd->recs + i * DS_RETAIN_REC_LEN;
    int rc;

    if (rd->cached == i)
        return 0;
    rd->cached = rd->n;
    sqlite3_bind_blob(rd->get, 1, rec, DS_XXH128_LEN, SQLITE_STATIC);
    rc = sqlite3_step(rd->get);
    if (rc == SQLITE_ROW) {
        if ((uint64_t)sqlite3_column_int64(rd->get, 0) != rd->offs[i + 1] - rd->offs[i])
            rc = chunk_corrupt(rd, i, "stored length differs");
        else
            rc =
                decode_chunk(rd, i, sqlite3_column_int(rd->get, 1), sqlite3_column_blob(rd->get, 2),
                             (size_t)sqlite3_column_bytes(rd->get, 2));
    } else if (rc == SQLITE_DONE) {
        rc = chunk_corrupt(rd, i, "missing from the store");
    } else {
        rc = db_err(rd->r, "reading a chunk");
    }
    sqlite3_reset(rd->get);
    if (rc == 0)
        rd->cached = i;
    return rc;
}

/* Index of the chunk holding offset off (< size). */
static size_t find_chunk(const ds_retain_reader_t *rd, uint64_t off)
{
    size_t lo = 0, hi = rd->n;

    if (rd->cached < rd->n && off >= rd->offs[rd->cached] && off < rd->offs[rd->cached + 1])
        return rd->cached;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (rd->offs[mid] <= off)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Feeds in-order bytes to the whole-version hash; DS_EHASH at the end. */
static int verify_feed(ds_retain_reader_t *rd, uint64_t off, const void *p, size_t n)
{
    uint8_t got[DS_SHA256_LEN];
    char hex[2 * DS_SHA256_LEN + 1];

    if (!rd->verify || rd->hash_done || off != rd->hashed)
        return 0;
    ds_sha256_update(&rd->sha, p, n);
    rd->hashed += n;
    if (rd->hashed < rd->size)
        return 0;
    rd->hash_done = 1;
    ds_sha256_final(&rd->sha, got);
    if (memcmp(got, rd->sha256, DS_SHA256_LEN) == 0)
        return 0;
    ds_hex(rd->sha256, DS_SHA256_LEN, hex);
    ds_log(DS_LOG_ERROR, "retain store %s: version %s: SHA-256 mismatch", rd->r->path, hex);
    return DS_EHASH;
}

long ds_retain_read(ds_retain_reader_t *rd, uint64_t offset, void *buf, size_t len)
{
    uint8_t *dst = buf;
    size_t done = 0;
    int rc;

    if (len > (size_t)1 << 30)
        len = (size_t)1 << 30;
    if (offset >= rd->size)
        return verify_feed(rd, offset, "", 0);
    if (len > rd->size - offset)
        len = (size_t)(rd->size - offset);
    while (done < len) {
        uint64_t pos = offset + done;
        size_t i = find_chunk(rd, pos), skip, n;

        rc = load_chunk(rd, i);
        if (rc < 0)
            return rc;
        skip = (size_t)(pos - rd->offs[i]);
        n = (size_t)(rd->offs[i + 1] - pos);
        if (n > len - done)
            n = len - done;
        memcpy(dst + done, rd->cbuf + skip, n);
        done += n;
    }
    rc = verify_feed(rd, offset, dst, done);
    return rc < 0 ? rc : (long)done;
}

int ds_retain_verify(ds_retain_t *r, const uint8_t sha256[DS_SHA256_LEN])
{
    ds_retain_reader_t *rd = NULL;
    size_t cap = 1u << 20;
    uint8_t *buf = malloc(cap);
    uint64_t off = 0;
    long n = 0;
    int rc = buf ? ds_retain_open_version(r, sha256, DS_RETAIN_READ_VERIFY, &rd) : DS_ENOMEM;

    while (rc == 0) {
        n = ds_retain_read(rd, off, buf, cap);
        if (n <= 0)
            break;
        off += (uint64_t)n;
    }
    if (rc == 0 && n < 0)
        rc = (int)n;
    ds_retain_reader_free(rd);
    free(buf);
    return rc;
}

static int fill_keep(ds_retain_t *r, const uint8_t *keep, size_t nkeep)
{
    sqlite3_stmt *st = NULL;
    int rc = exec(r, "CREATE TEMP TABLE IF NOT EXISTS keep(sha BLOB PRIMARY KEY) WITHOUT ROWID;"
                     "DELETE FROM temp.keep;");

    if (rc == 0)
        rc = prepare(r, "INSERT OR IGNORE INTO temp.keep(sha) VALUES(?1)", &st);
    for (size_t i = 0; rc == 0 && i < nkeep; i++) {
        sqlite3_bind_blob(st, 1, keep + i * DS_SHA256_LEN, DS_SHA256_LEN, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_err(r, "filling the keep set");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static int query_u64(ds_retain_t *r, const char *sql, uint64_t *a, uint64_t *b, uint64_t *c)
{
    sqlite3_stmt *st = NULL;
    uint64_t *outs[3] = {a, b, c};
    int rc = prepare(r, sql, &st);

    if (rc < 0)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_err(r, sql);
    } else {
        for (int i = 0; i < 3; i++)
            if (outs[i] != NULL)
                *outs[i] = (uint64_t)sqlite3_column_int64(st, i);
    }
    sqlite3_finalize(st);
    return rc;
}

/* 1 when a quarter or more of the file is free pages. Fewer are left to
 * the next versions retained, which reuse them: giving them back moves
 * the pages after them into the holes (the file's tail, the newest
 * chunks), through the WAL, on every gc. */
static int mostly_free(ds_retain_t *r)
{
    uint64_t free_pages = 0, pages = 0;

    if (query_u64(r, "SELECT * FROM pragma_freelist_count, pragma_page_count", &free_pages, &pages,
                  NULL) < 0)
        return 1;
    return free_pages * 4 >= pages;
}

static const char gc_sql[] = "DELETE FROM ref WHERE version_id IN (SELECT id FROM version"
                             " WHERE sha256 NOT IN (SELECT sha FROM temp.keep));"
                             "DELETE FROM version WHERE sha256 NOT IN (SELECT sha FROM temp.keep);"
                             "CREATE TEMP TABLE IF NOT EXISTS dead(id INTEGER PRIMARY KEY);"
                             "DELETE FROM temp.dead;"
                             "INSERT INTO temp.dead SELECT id FROM chunk"
                             " WHERE NOT EXISTS (SELECT 1 FROM ref WHERE ref.chunk_id = chunk.id);";

int ds_retain_gc(ds_retain_t *r, const uint8_t *keep, size_t nkeep, uint64_t *freed_bytes)
{
    return ds_retain_gc_ex(r, keep, nkeep, 0, freed_bytes);
}

int ds_retain_gc_ex(ds_retain_t *r, const uint8_t *keep, size_t nkeep, int flags,
                    uint64_t *freed_bytes)
{
    int dry_run = (flags & DS_RETAIN_GC_DRY_RUN) != 0;
    uint64_t freed = 0;
    int rc = exec(r, "BEGIN IMMEDIATE");

    if (rc < 0)
        return rc;
    if ((rc = fill_keep(r, keep, nkeep)) < 0 || (rc = exec(r, gc_sql)) < 0)
        goto out;
    rc = query_u64(r,
                   "SELECT COALESCE(SUM(zlen), 0), 0, 0 FROM chunk"
                   " WHERE id IN (SELECT id FROM temp.dead)",
                   &freed, NULL, NULL);
    if (rc == 0)
        rc = exec(r, "DELETE FROM blob WHERE id IN (SELECT id FROM temp.dead);"
                     "DELETE FROM chunk WHERE id IN (SELECT id FROM temp.dead);"
                     "DELETE FROM temp.dead; DELETE FROM temp.keep;");
out:
    if (dry_run) /* a dry run measures, then undoes everything */
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    else
        rc = tx_end(r, 0, rc);
    /* Space reclaim is best effort: a failure here loses nothing. Asked to
     * shrink, the pages earlier gcs left free go back too, even when this
     * one frees nothing. */
    if (rc == 0 && (freed > 0 || (flags & DS_RETAIN_GC_SHRINK)) && !dry_run)
        sqlite3_exec(r->db,
                     (flags & DS_RETAIN_GC_SHRINK) || mostly_free(r)
                         ? "PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);"
                         : "PRAGMA wal_checkpoint(TRUNCATE);",
                     NULL, NULL, NULL);
    if (rc == 0 && freed_bytes != NULL)
        *freed_bytes = freed;
    return rc;
}

static uint64_t file_size(const char *path, const char *suffix)
{
    char buf[4096];
    struct stat st;

    snprintf(buf, sizeof(buf), "%s%s", path, suffix);
    return stat(buf, &st) == 0 ? (uint64_t)st.st_size : 0;
}

int ds_retain_usage(ds_retain_t *r, ds_retain_usage_t *u)
{
    int rc;

    memset(u, 0, sizeof(*u));
    rc = query_u64(r, "SELECT COUNT(*), COALESCE(SUM(size), 0), 0 FROM version", &u->versions,
                   &u->logical_bytes, NULL);
    if (rc == 0)
        rc = query_u64(r,
                       "SELECT COUNT(*), COALESCE(SUM(zlen), 0), COALESCE(SUM(raw_len), 0)"
                       " FROM chunk",
                       &u->chunks, &u->stored_bytes, &u->unique_bytes);
    u->file_bytes = file_size(r->path, "") + file_size(r->path, "-wal");
    return rc;
}
