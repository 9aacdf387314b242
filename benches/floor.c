/* The floor of benches/compare.py: the least any QMAILQUEUE wrapper does. Starts argv[1]
 * (vfork+exec) with fd 0 and fd 1 on two pipes, copies our fd 0 then our fd 1 into them, and
 * mirrors its exit (a signal: 81). */
#include <sys/wait.h>
#include <unistd.h>
static char buf[1 << 16];
static int copy(int from, int to) {
    ssize_t n;
    while ((n = read(from, buf, sizeof buf)) > 0)
        for (ssize_t o = 0, w; o < n; o += w)
            if ((w = write(to, buf + o, n - o)) <= 0) return -1;
    return n < 0 ? -1 : close(to);
}
int main(int argc, char **argv) {
    int m[2], e[2], st;
    if (argc < 2 || pipe(m) || pipe(e)) return 81;
    pid_t pid = vfork();
    if (pid == 0) {
        dup2(m[0], 0); dup2(e[0], 1);
        close(m[0]); close(m[1]); close(e[0]); close(e[1]);
        execv(argv[1], argv + 1);
        _exit(120);
    }
    if (pid < 0) return 81;
    close(m[0]); close(e[0]);
    if (copy(0, m[1]) || copy(1, e[1])) return 81;
    if (waitpid(pid, &st, 0) < 0) return 81;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 81;
}
