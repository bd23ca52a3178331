/*
 * `coffer-launch run`: start a measured program in the soft TEE and act as
 * its attestation agent until it exits.
 *
 * The parent keeps the platform key and answers the enclave's requests
 * (report, sealing key, info) over a SOCK_SEQPACKET pair; the child is
 * confined (cgroup v1 cpu/memory limits, RLIMIT_CORE 0, no_new_privs, a
 * private IPC namespace, a seccomp denylist, optionally an unprivileged
 * uid that keeps only CAP_IPC_LOCK) and fexecve()s the sealed memfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <seccomp.h>

#include "coffer/enc.h"
#include "coffer/soft.h"
#include "launch.h"

extern char **environ;

/* 16 bytes in the report: "coffer/" and the version. */
#define LAUNCHER_VERSION "coffer/" COFFER_VERSION
#define CGROUP_ROOT "/sys/fs/cgroup"

struct instance {
	const struct launch_config *cfg;
	struct launch_image img;
	cf_soft_platform platform;
	uint8_t instance_id[16];
	char instance_hex[33];
	uint64_t launch_time;
	char cg_cpu[4096];
	char cg_mem[4096];
	pid_t child;
};

static volatile sig_atomic_t forward_signal;

static void on_signal(int sig)
{
	forward_signal = sig;
}

static void warnx_(const struct launch_config *c, const char *fmt, ...) CF_PRINTF(2, 3);
static void warnx_(const struct launch_config *c, const char *fmt, ...)
{
	if (c->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "coffer-launch: warning: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

/* --- cgroup v1 (this host's cpu and memory controllers are v1) --- */

static bool cgroup_self_path(const char *controller, char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[1024];
	bool found = false;
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
		if (!b)
			continue;
		*b = 0;
		/* The controller list may be "cpu,cpuacct". */
		char *list = a + 1, *tok, *save;
		for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (strcmp(tok, controller) == 0) {
				char *path = b + 1;
				path[strcspn(path, "\n")] = 0;
				snprintf(out, cap, "%s", path);
				found = true;
			}
		}
	}
	fclose(f);
	return found;
}

static bool write_file(const char *dir, const char *name, const char *value)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = write(fd, value, strlen(value)) == (ssize_t)strlen(value);
	close(fd);
	return ok;
}

/* Creates <controller>/<our cgroup>/coffer-<id>; empty dir on failure. */
static void cgroup_make(struct instance *in, const char *controller, char *dir, size_t cap)
{
	char self[2048];
	dir[0] = 0;
	if (!cgroup_self_path(controller, self, sizeof(self)))
		return;
	snprintf(dir, cap, CGROUP_ROOT "/%s%s/coffer-%s", controller, strcmp(self, "/") ? self : "",
		 in->instance_hex);
	if (mkdir(dir, 0700) != 0)
		dir[0] = 0;
}

static void cgroups_setup(struct instance *in)
{
	const struct launch_config *c = in->cfg;
	char v[64];
	if (c->cores) {
		cgroup_make(in, "cpu", in->cg_cpu, sizeof(in->cg_cpu));
		snprintf(v, sizeof(v), "%u", c->cores * 100000u);
		if (!in->cg_cpu[0] || !write_file(in->cg_cpu, "cpu.cfs_period_us", "100000") ||
		    !write_file(in->cg_cpu, "cpu.cfs_quota_us", v))
			warnx_(c, "no cgroup v1 cpu controller here: --cores %u is not enforced", c->cores);
	}
	if (c->memory) {
		cgroup_make(in, "memory", in->cg_mem, sizeof(in->cg_mem));
		snprintf(v, sizeof(v), "%llu", (unsigned long long)c->memory);
		if (!in->cg_mem[0] || !write_file(in->cg_mem, "memory.limit_in_bytes", v))
			warnx_(c, "no cgroup v1 memory controller here: --memory is not enforced");
	}
}

static void cgroups_join(struct instance *in, pid_t pid)
{
	char v[32];
	snprintf(v, sizeof(v), "%d", (int)pid);
	if (in->cg_cpu[0] && !write_file(in->cg_cpu, "cgroup.procs", v))
		warnx_(in->cfg, "could not place the enclave in its cpu cgroup");
	if (in->cg_mem[0] && !write_file(in->cg_mem, "cgroup.procs", v))
		warnx_(in->cfg, "could not place the enclave in its memory cgroup");
}

static void cgroups_remove(struct instance *in)
{
	if (in->cg_cpu[0])
		rmdir(in->cg_cpu);
	if (in->cg_mem[0])
		rmdir(in->cg_mem);
}

/* --- the child's confinement --- */

static int seccomp_install(void)
{
	/*
	 * A denylist: unmodified programs need most of Linux. What is denied is
	 * what would let the enclave reach other processes' memory or change
	 * the kernel; the TEE's own confinement is memfd_secret, not this.
	 */
	static const int denied[] = {
		SCMP_SYS(ptrace),	  SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev),
		SCMP_SYS(kexec_load),	  SCMP_SYS(kexec_file_load),  SCMP_SYS(init_module),
		SCMP_SYS(finit_module),	  SCMP_SYS(delete_module),    SCMP_SYS(bpf),
		SCMP_SYS(perf_event_open), SCMP_SYS(userfaultfd),     SCMP_SYS(mount),
		SCMP_SYS(umount2),	  SCMP_SYS(pivot_root),	      SCMP_SYS(swapon),
		SCMP_SYS(swapoff),	  SCMP_SYS(reboot),	      SCMP_SYS(setns),
		SCMP_SYS(open_by_handle_at), SCMP_SYS(iopl),	      SCMP_SYS(ioperm),
		SCMP_SYS(acct),
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]) && rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), denied[i], 0);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc;
}

/* Switches to user, keeping CAP_IPC_LOCK (secretmem is exempt from RLIMIT_MEMLOCK with it). */
static int drop_to_user(const char *user)
{
	struct passwd *pw = getpwnam(user);
	if (!pw)
		return -1;
	/* The bounding set needs CAP_SETPCAP, so it is trimmed while still root. */
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
		if (cap != CAP_IPC_LOCK && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
			return -1;
	}
	if (prctl(PR_SET_KEEPCAPS, 1) != 0 || setgroups(0, NULL) != 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0)
		return -1;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = data[0].inheritable = 1u << CAP_IPC_LOCK;
	if (syscall(SYS_capset, &hdr, data) != 0)
		return -1;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_IPC_LOCK, 0, 0) != 0)
		return -1;
	return 0;
}

static char **build_env(const struct instance *in, int tee_fd)
{
	const struct launch_config *c = in->cfg;
	size_t n = 0, cap = c->nenv + 8;
	char **envp = calloc(cap, sizeof(char *));
	if (!envp)
		return NULL;
	for (size_t i = 0; i < c->nenv; i++) {
		const char *v = getenv(c->env[i]);
		if (!v)
			continue;
		if (asprintf(&envp[n++], "%s=%s", c->env[i], v) < 0)
			return NULL;
	}
	if (asprintf(&envp[n++], "%s=%d", CF_SOFT_FD_ENV, tee_fd) < 0 ||
	    asprintf(&envp[n++], "COFFER_TEE=soft") < 0 ||
	    asprintf(&envp[n++], "COFFER_ENCLAVE_SIZE=%llu", (unsigned long long)c->enclave_size) < 0)
		return NULL;
	if (in->img.runtime_fd >= 0) {
		if (in->img.allocator_fd >= 0) {
			if (asprintf(&envp[n++], "LD_PRELOAD=/proc/self/fd/%d:/proc/self/fd/%d",
				     in->img.runtime_fd, in->img.allocator_fd) < 0)
				return NULL;
		} else if (asprintf(&envp[n++], "LD_PRELOAD=/proc/self/fd/%d", in->img.runtime_fd) < 0) {
			return NULL;
		}
	}
	return envp;
}

/* Never returns: execs the program or reports errno on err_fd and exits. */
static void child_main(struct instance *in, int tee_fd, int go_fd, int err_fd)
{
	const struct launch_config *c = in->cfg;
	int e = 0;
	char ok;
	/* Die with the launcher: an enclave without its agent must not linger. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(127);
	/* Wait until the parent has put us in our cgroups. */
	if (read(go_fd, &ok, 1) != 1)
		_exit(127);
	close(go_fd);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);

	int flags = fcntl(tee_fd, F_GETFD);
	struct rlimit core = { 0, 0 };
	if (flags < 0 || fcntl(tee_fd, F_SETFD, flags & ~FD_CLOEXEC) != 0 ||
	    setrlimit(RLIMIT_CORE, &core) != 0) {
		e = errno;
		goto fail;
	}
	if (unshare(CLONE_NEWIPC) != 0)
		warnx_(c, "no private IPC namespace: %s", strerror(errno));
	if (c->user && drop_to_user(c->user) != 0) {
		e = errno ? errno : EPERM;
		goto fail;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || seccomp_install() != 0) {
		e = errno ? errno : EPERM;
		goto fail;
	}
	char **envp = build_env(in, tee_fd);
	if (!envp) {
		e = ENOMEM;
		goto fail;
	}
	char *argv[LAUNCH_MAX_ARGS + 2];
	argv[0] = (char *)c->program;
	for (size_t i = 0; i < c->nargs; i++)
		argv[i + 1] = c->args[i];
	argv[c->nargs + 1] = NULL;
	fexecve(in->img.program_fd, argv, envp);
	e = errno;
fail:
	if (write(err_fd, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

/* --- the agent: one request, one reply --- */

static void agent_reply(int fd, cf_err status, const void *data, size_t len)
{
	uint8_t msg[1 + CF_SOFT_REPORT_LEN];
	msg[0] = (uint8_t)status;
	if (status == CF_OK && len <= CF_SOFT_REPORT_LEN && data)
		memcpy(msg + 1, data, len);
	else
		len = 0;
	if (send(fd, msg, 1 + len, MSG_NOSIGNAL) < 0)
		return;
	cf_wipe(msg, sizeof(msg));
}

/* Returns false when the enclave closed its end or broke the protocol. */
static bool agent_serve(struct instance *in, int fd)
{
	uint8_t req[2 + CF_SOFT_MAX_LABEL + 1];
	ssize_t n = recv(fd, req, sizeof(req), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false;
	/* A malformed message is fatal to the channel, as in smtpd's imsg. */
	if (n < 2 || (size_t)n > sizeof(req) - 1 || req[0] != CF_SOFT_PROTO_VERSION) {
		agent_reply(fd, CF_ERR_PARSE, NULL, 0);
		return false;
	}
	size_t len = (size_t)n - 2;
	switch (req[1]) {
	case CF_SOFT_MSG_REPORT: {
		if (len != CF_REPORT_DATA_LEN) {
			agent_reply(fd, CF_ERR_PARSE, NULL, 0);
			return false;
		}
		cf_soft_report r;
		memset(&r, 0, sizeof(r));
		r.version = CF_SOFT_REPORT_VERSION;
		r.flags = in->cfg->debug ? CF_SOFT_FLAG_DEBUG : 0;
		r.launch_time = in->launch_time;
		memcpy(r.instance_id, in->instance_id, 16);
		memcpy(r.measurement, in->img.measurement, 48);
		memcpy(r.report_data, req + 2, CF_REPORT_DATA_LEN);
		memcpy(r.platform_id, in->platform.platform_id, 32);
		snprintf(r.launcher_version, sizeof(r.launcher_version), "%.16s", LAUNCHER_VERSION);
		uint8_t report[CF_SOFT_REPORT_LEN];
		cf_err rc = cf_soft_report_sign(in->platform.key, &r, report);
		agent_reply(fd, rc, report, sizeof(report));
		return true;
	}
	case CF_SOFT_MSG_SEAL: {
		char label[CF_SOFT_MAX_LABEL + 1];
		if (len == 0 || len > CF_SOFT_MAX_LABEL || memchr(req + 2, 0, len)) {
			agent_reply(fd, CF_ERR_PARSE, NULL, 0);
			return false;
		}
		memcpy(label, req + 2, len);
		label[len] = 0;
		uint8_t key[CF_SEAL_KEY_LEN];
		cf_err rc = cf_soft_seal_key(in->platform.seal_secret, in->img.measurement, label, key);
		agent_reply(fd, rc, key, sizeof(key));
		cf_wipe(key, sizeof(key));
		return true;
	}
	case CF_SOFT_MSG_INFO: {
		uint8_t info[64];
		if (len != 0) {
			agent_reply(fd, CF_ERR_PARSE, NULL, 0);
			return false;
		}
		memcpy(info, in->img.measurement, 48);
		memcpy(info + 48, in->instance_id, 16);
		agent_reply(fd, CF_OK, info, sizeof(info));
		return true;
	}
	default:
		agent_reply(fd, CF_ERR_UNSUPPORTED, NULL, 0);
		return false;
	}
}

static int exit_status(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return 1;
}

int launch_run(const struct launch_config *c)
{
	struct instance in;
	char why[512] = "";
	int status = 1, sv[2] = { -1, -1 }, go[2] = { -1, -1 }, err[2] = { -1, -1 };
	cf_err rc;
	memset(&in, 0, sizeof(in));
	in.cfg = c;
	in.img.program_fd = in.img.runtime_fd = in.img.allocator_fd = -1;
	in.child = -1;

	rc = cf_soft_platform_load(c->platform_dir, &in.platform);
	if (rc != CF_OK) {
		fprintf(stderr, "coffer-launch: loading the platform key from %s failed: %s%s\n",
			c->platform_dir,
			rc == CF_ERR_NOT_FOUND ? "no platform key" :
			rc == CF_ERR_ARG ? "secret file readable by others" : cf_strerror(rc),
			rc == CF_ERR_NOT_FOUND ? " (run 'coffer-launch platform init')" : "");
		return 1;
	}
	if ((rc = launch_image_build(c, &in.img, why, sizeof(why))) != CF_OK) {
		fprintf(stderr, "coffer-launch: loading the program failed: %s\n", why);
		goto out;
	}
	if (cf_random(in.instance_id, sizeof(in.instance_id)) != CF_OK) {
		fprintf(stderr, "coffer-launch: no randomness\n");
		goto out;
	}
	cf_hex_encode(in.instance_id, sizeof(in.instance_id), in.instance_hex);
	in.launch_time = (uint64_t)time(NULL);
	cgroups_setup(&in);

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
	    pipe2(go, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
		fprintf(stderr, "coffer-launch: creating the enclave channel failed: %s\n",
			strerror(errno));
		goto out;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	in.child = fork();
	if (in.child < 0) {
		fprintf(stderr, "coffer-launch: fork failed: %s\n", strerror(errno));
		goto out;
	}
	if (in.child == 0) {
		close(sv[0]);
		close(go[1]);
		close(err[0]);
		child_main(&in, sv[1], go[0], err[1]);
	}
	close(sv[1]);
	sv[1] = -1;
	close(go[0]);
	go[0] = -1;
	close(err[1]);
	err[1] = -1;
	cgroups_join(&in, in.child);
	if (write(go[1], "g", 1) != 1) {
		fprintf(stderr, "coffer-launch: starting the enclave failed\n");
		goto out;
	}
	close(go[1]);
	go[1] = -1;
	int child_errno = 0;
	ssize_t en = read(err[0], &child_errno, sizeof(child_errno));
	if (en == (ssize_t)sizeof(child_errno)) {
		fprintf(stderr, "coffer-launch: starting %s failed: %s\n", c->program,
			strerror(child_errno));
		waitpid(in.child, NULL, 0);
		in.child = -1;
		goto out;
	}
	if (!c->quiet) {
		char mhex[97];
		cf_hex_encode(in.img.measurement, 48, mhex);
		fprintf(stderr,
			"coffer-launch: tee=soft instance=%s pid=%d enclave_size=%llu measurement=%s%s\n",
			in.instance_hex, (int)in.child, (unsigned long long)c->enclave_size, mhex,
			c->debug ? " DEBUG" : "");
	}

	bool channel = true;
	for (;;) {
		if (forward_signal) {
			kill(in.child, forward_signal);
			forward_signal = 0;
		}
		int ws;
		pid_t w = waitpid(in.child, &ws, WNOHANG);
		if (w == in.child) {
			status = exit_status(ws);
			in.child = -1;
			break;
		}
		struct pollfd p = { channel ? sv[0] : -1, POLLIN, 0 };
		int pr = poll(&p, 1, 50);
		if (pr > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
			if (!agent_serve(&in, sv[0])) {
				/* Closed or misbehaving: stop answering; the program keeps running. */
				channel = false;
			}
		}
	}
out:
	if (in.child > 0) {
		kill(in.child, SIGKILL);
		waitpid(in.child, NULL, 0);
	}
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (go[i] >= 0)
			close(go[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	cgroups_remove(&in);
	launch_image_free(&in.img);
	cf_soft_platform_free(&in.platform);
	return status;
}
