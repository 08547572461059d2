/*
 * bench_rusage: runs a command and appends its CPU time to a file with
 * microsecond precision and its peak RSS ("user_s sys_s wall_s maxrss_kib\n").
 * GNU time rounds to 10 ms, which hides per-process costs of a few ms when 50
 * agents are summed. The times include the command's waited-for descendants,
 * as wait4 reports; maxrss is the largest of the command and those
 * descendants (Linux ru_maxrss), not their sum.
 * Usage: bench_rusage OUTFILE COMMAND [ARGS...]; exits with the command's
 * status.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double secs(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    struct timespec t0, t1;
    struct rusage ru;
    char line[128];
    int status, fd, n;
    pid_t pid;

    if (argc < 3) {
        fprintf(stderr, "usage: bench_rusage OUTFILE COMMAND [ARGS...]\n");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid = fork();
    if (pid < 0) {
        perror("bench_rusage: fork");
        return 2;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "bench_rusage: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("bench_rusage: wait4");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    n = snprintf(line, sizeof(line), "%.6f %.6f %.6f %ld\n", secs(ru.ru_utime), secs(ru.ru_stime),
                 (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
                 ru.ru_maxrss);
    fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line, (size_t)n) != n) {
        perror("bench_rusage: cannot record");
        return 2;
    }
    close(fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
