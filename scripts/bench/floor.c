/* The floor: the least work a container lifecycle needs, done directly, so the benchmark can
 * say how far each runtime is above it. It does what every runtime here does for one busybox
 * container, and nothing else: a cgroup in each given hierarchy, a child in new namespaces that
 * joins those cgroups, pivots into the rootfs, mounts /proc and execs the workload; then it
 * waits for the workload and removes the cgroups. No spec parsing, no state files, no hooks.
 *
 * usage: floor ROOTFS NS[,NS...] CGROUP_DIR... -- ARGV...
 *   NS is one of pid, network, ipc, uts, mount (the names of the OCI spec)
 *   each CGROUP_DIR is created (and must not exist yet) and removed at the end
 * exit status: the workload's (128+N when killed by signal N), 125 on a setup failure
 * built by scripts/bench.py with `cc -O2`
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CGROUPS 32

static int fail(const char *what) {
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    return 125;
}

static int ns_flags(const char *list, int *flags) {
    char buf[256];
    if (strlen(list) >= sizeof buf)
        return -1;
    strcpy(buf, list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "pid")) *flags |= CLONE_NEWPID;
        else if (!strcmp(t, "network")) *flags |= CLONE_NEWNET;
        else if (!strcmp(t, "ipc")) *flags |= CLONE_NEWIPC;
        else if (!strcmp(t, "uts")) *flags |= CLONE_NEWUTS;
        else if (!strcmp(t, "mount")) *flags |= CLONE_NEWNS;
        else return -1;
    }
    return 0;
}

/* the container side: wait for the parent to place us in the cgroups, enter the rootfs, exec */
static int child(int ready, const char *rootfs, int flags, char **argv) {
    char c;
    if (read(ready, &c, 1) != 1)
        return fail("waiting for the parent");
    if (flags & CLONE_NEWNS) {
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
            return fail("making / private");
        if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL))
            return fail("bind-mounting the rootfs");
        if (chdir(rootfs) || syscall(SYS_pivot_root, ".", "."))
            return fail("pivot_root");
        if (umount2(".", MNT_DETACH) || chdir("/"))
            return fail("detaching the old root");
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
            return fail("mounting /proc");
    } else if (chroot(rootfs) || chdir("/")) {
        return fail("chroot");
    }
    if ((flags & CLONE_NEWUTS) && sethostname("floor", 5))
        return fail("sethostname");
    execv(argv[0], argv);
    return fail("execv");
}

static int join(const char *dir, pid_t pid) {
    char path[4096], num[32];
    int n = snprintf(num, sizeof num, "%d", pid);
    if ((size_t)snprintf(path, sizeof path, "%s/cgroup.procs", dir) >= sizeof path)
        return -1;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int ok = write(fd, num, n) == n;
    close(fd);
    return ok ? 0 : -1;
}

/* a new v1 cpuset cgroup has empty cpus and mems, and refuses tasks until they are set: copy
 * the parent's, as runc does */
static int cpuset_inherit(const char *dir) {
    static const char *files[] = {"cpuset.cpus", "cpuset.mems"};
    for (int k = 0; k < 2; k++) {
        char path[4096], val[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/../%s", dir, files[k]) >= sizeof path)
            return -1;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return errno == ENOENT ? 0 : -1; /* not a cpuset hierarchy */
        ssize_t n = read(fd, val, sizeof val);
        close(fd);
        if (n <= 0 || n == (ssize_t)sizeof val)
            return -1;
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
            return -1;
        int ok = write(fd, val, n) == n;
        close(fd);
        if (!ok)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int flags = 0, ncg = 0, i = 3, status = 0;
    char *cgroups[MAX_CGROUPS];
    if (argc < 5 || ns_flags(argv[2], &flags)) {
        fprintf(stderr, "usage: floor ROOTFS NS[,NS...] CGROUP_DIR... -- ARGV...\n");
        return 125;
    }
    for (; i < argc && strcmp(argv[i], "--"); i++) {
        if (ncg == MAX_CGROUPS) {
            fprintf(stderr, "floor: at most %d cgroup directories\n", MAX_CGROUPS);
            return 125;
        }
        cgroups[ncg++] = argv[i];
    }
    if (i + 1 >= argc) {
        fprintf(stderr, "floor: no workload after --\n");
        return 125;
    }
    int rc = 125, made = 0, pipefd[2];
    for (; made < ncg; made++)
        if (mkdir(cgroups[made], 0755)) {
            rc = fail(cgroups[made]);
            goto out;
        } else if (cpuset_inherit(cgroups[made])) {
            made++;
            rc = fail(cgroups[made - 1]);
            goto out;
        }
    if (pipe2(pipefd, O_CLOEXEC)) {
        rc = fail("pipe");
        goto out;
    }
    pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) {
        rc = fail("clone");
        goto out;
    }
    if (pid == 0) {
        close(pipefd[1]);
        _exit(child(pipefd[0], argv[1], flags, &argv[i + 1]));
    }
    close(pipefd[0]);
    for (int k = 0; k < ncg; k++)
        if (join(cgroups[k], pid)) {
            rc = fail(cgroups[k]);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            goto out;
        }
    int released = write(pipefd[1], "x", 1) == 1;
    if (!released) {
        rc = fail("releasing the child");
        kill(pid, SIGKILL);
    }
    close(pipefd[1]);
    if (waitpid(pid, &status, 0) < 0)
        rc = fail("waitpid");
    else if (released)
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
out:
    while (made-- > 0)
        if (rmdir(cgroups[made]))
            fail(cgroups[made]);
    return rc;
}
