/*
 * powercut shim: an LD_PRELOAD library for tests/powercut.rs.
 *
 * It records, for files under $PC_ROOT, every event that decides what a
 * power cut would leave on disk, into $PC_JOURNAL/journal (one line each):
 *
 *   C <path>        a file was created (open/openat with O_CREAT, new)
 *   S <path> <n>    the file was fsynced/fdatasynced; its content at that
 *                   moment is copied to $PC_JOURNAL/copies/<n>
 *   D <dir>         a directory was fsynced (the names in it are durable)
 *   R <old> <new>   a rename
 *   U <path>        an unlink
 *
 * Writes themselves are not recorded: what was not fsynced is what a power
 * cut loses, so the test rolls every file back to its last copy, and undoes
 * creations and renames whose directory was not fsynced after them.
 * Compiled by the test with the machine's C compiler; no Rust `unsafe`.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char root[PATH_MAX];
static char journal_dir[PATH_MAX];
static int journal_fd = -1;
static unsigned long copies = 0;
static int ready = 0;

static int raw_open(const char *path, int flags, mode_t mode) {
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

static void init(void) {
    if (ready) return;
    const char *r = getenv("PC_ROOT"), *j = getenv("PC_JOURNAL");
    if (!r || !j) { ready = -1; return; }
    snprintf(root, sizeof root, "%s", r);
    snprintf(journal_dir, sizeof journal_dir, "%s", j);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/journal", journal_dir);
    journal_fd = raw_open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    ready = journal_fd >= 0 ? 1 : -1;
}

static int under_root(const char *path) {
    size_t n = strlen(root);
    return n > 0 && strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == 0);
}

/* An absolute form of `path` (relative paths are taken from the cwd). */
static void absolute(const char *path, char *out) {
    if (path[0] == '/') { snprintf(out, PATH_MAX, "%s", path); return; }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    snprintf(out, PATH_MAX, "%s/%s", cwd, path);
}

static int fd_path(int fd, char *out) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, PATH_MAX - 1);
    if (n < 0) return -1;
    out[n] = 0;
    return 0;
}

static void record(const char *line) {
    size_t len = strlen(line), done = 0;
    while (done < len) {
        ssize_t w = write(journal_fd, line + done, len - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
}

static void copy_file(const char *path, unsigned long n) {
    char dst[PATH_MAX];
    snprintf(dst, sizeof dst, "%s/copies/%lu", journal_dir, n);
    int in = raw_open(path, O_RDONLY | O_CLOEXEC, 0);
    int out = raw_open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in >= 0 && out >= 0) {
        char buf[65536];
        ssize_t r;
        while ((r = read(in, buf, sizeof buf)) > 0) {
            ssize_t off = 0;
            while (off < r) {
                ssize_t w = write(out, buf + off, (size_t)(r - off));
                if (w <= 0) break;
                off += w;
            }
        }
    }
    if (in >= 0) close(in);
    if (out >= 0) close(out);
}

static void after_sync(int fd) {
    init();
    if (ready != 1) return;
    char path[PATH_MAX];
    struct stat st;
    if (fd_path(fd, path) != 0 || !under_root(path) || fstat(fd, &st) != 0) return;
    char line[2 * PATH_MAX + 64];
    pthread_mutex_lock(&lock);
    if (S_ISDIR(st.st_mode)) {
        snprintf(line, sizeof line, "D %s\n", path);
    } else {
        unsigned long n = ++copies;
        copy_file(path, n);
        snprintf(line, sizeof line, "S %s %lu\n", path, n);
    }
    record(line);
    pthread_mutex_unlock(&lock);
}

#define REAL(name, ret, args) \
    static ret (*real_##name) args = NULL; \
    if (!real_##name) real_##name = (ret (*) args)dlsym(RTLD_NEXT, #name)

int fsync(int fd) {
    REAL(fsync, int, (int));
    int r = real_fsync(fd);
    if (r == 0) after_sync(fd);
    return r;
}

int fdatasync(int fd) {
    REAL(fdatasync, int, (int));
    int r = real_fdatasync(fd);
    if (r == 0) after_sync(fd);
    return r;
}

static void created(int fd, int existed) {
    init();
    if (ready != 1 || fd < 0 || existed) return;
    char path[PATH_MAX];
    if (fd_path(fd, path) != 0 || !under_root(path)) return;
    char line[PATH_MAX + 8];
    snprintf(line, sizeof line, "C %s\n", path);
    pthread_mutex_lock(&lock);
    record(line);
    pthread_mutex_unlock(&lock);
}

static int exists_at(int dirfd, const char *path) {
    struct stat st;
    return fstatat(dirfd, path, &st, 0) == 0;
}

#define OPEN_WRAPPER(name, real_args, call_args, ...) \
    int name(__VA_ARGS__) { \
        mode_t mode = 0; \
        if (flags & (O_CREAT | O_TMPFILE)) { \
            va_list ap; \
            va_start(ap, flags); \
            mode = (mode_t)va_arg(ap, int); \
            va_end(ap); \
        } \
        REAL(name, int, real_args); \
        int existed = (flags & O_CREAT) ? exists_at(DIRFD, path) : 1; \
        int fd = real_##name call_args; \
        if (flags & O_CREAT) created(fd, existed); \
        return fd; \
    }

#define DIRFD AT_FDCWD
OPEN_WRAPPER(open, (const char *, int, ...), (path, flags, mode), const char *path, int flags, ...)
OPEN_WRAPPER(open64, (const char *, int, ...), (path, flags, mode), const char *path, int flags, ...)
#undef DIRFD
#define DIRFD dirfd
OPEN_WRAPPER(openat, (int, const char *, int, ...), (dirfd, path, flags, mode), int dirfd, const char *path, int flags, ...)
OPEN_WRAPPER(openat64, (int, const char *, int, ...), (dirfd, path, flags, mode), int dirfd, const char *path, int flags, ...)
#undef DIRFD

static void record_two(char kind, const char *a, const char *b) {
    init();
    if (ready != 1) return;
    char pa[PATH_MAX], pb[PATH_MAX];
    absolute(a, pa);
    if (b) absolute(b, pb);
    if (!under_root(pa) && !(b && under_root(pb))) return;
    char line[2 * PATH_MAX + 8];
    if (b) snprintf(line, sizeof line, "%c %s %s\n", kind, pa, pb);
    else snprintf(line, sizeof line, "%c %s\n", kind, pa);
    pthread_mutex_lock(&lock);
    record(line);
    pthread_mutex_unlock(&lock);
}

int rename(const char *old, const char *new) {
    REAL(rename, int, (const char *, const char *));
    int r = real_rename(old, new);
    if (r == 0) record_two('R', old, new);
    return r;
}

int renameat(int olddir, const char *old, int newdir, const char *new) {
    REAL(renameat, int, (int, const char *, int, const char *));
    int r = real_renameat(olddir, old, newdir, new);
    /* The relay renames with absolute paths; relative ones are taken from the cwd. */
    if (r == 0) record_two('R', old, new);
    return r;
}

int unlink(const char *path) {
    REAL(unlink, int, (const char *));
    int r = real_unlink(path);
    if (r == 0) record_two('U', path, NULL);
    return r;
}

int unlinkat(int dirfd, const char *path, int flags) {
    REAL(unlinkat, int, (int, const char *, int));
    int r = real_unlinkat(dirfd, path, flags);
    if (r == 0 && !(flags & AT_REMOVEDIR)) record_two('U', path, NULL);
    return r;
}
