/*
 * The soft driver: a run is `coffer-launch run --cores C --memory M
 * --enclave-size E -- coffer-enclave`, always with these arguments and no
 * others, so the enclave's measurement depends only on the instance's
 * size. Its parameters (with the run token) go to its standard input,
 * its standard output and error to STATE/runs/RUN.log (capped), and one
 * watcher thread per run records how it ended.
 *
 * The child is its own process group (cancel signals the launcher and the
 * enclave together) and dies with the thread that forked it
 * (PR_SET_PDEATHSIG): when cofferd stops, its enclaves stop, and the next
 * start marks their runs failed.
 */
#define CF_LOG_MODULE "runner"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coffer/buf.h"
#include "coffer/log.h"
#include "internal.h"

#define POLL_MS 100
#define CANCEL_GRACE_S 5
#define MAX_PARAMS (256u * 1024u)

typedef struct proc {
	struct proc *next;
	runner *r;
	char run_id[STORE_ID_LEN];
	pid_t pid;
	int in_fd;        /* the enclave's stdin: parameters still to write */
	int out_fd;       /* its stdout and stderr */
	int log_fd;
	char *params;     /* secret (the run token): wiped once written */
	size_t params_len, params_off;
	bool cancel;      /* under r->lock */
	bool reaped;      /* under r->lock: the process is reaped, its group id no longer ours */
	bool done;        /* under r->lock: the watcher has returned, join it */
	pthread_t thread;
} proc;

struct runner {
	cofferd *d;
	pthread_mutex_t lock;
	proc *procs;
};

static int64_t mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

bool runner_soft_available(cofferd *d)
{
	if (!d->launch_path[0] || access(d->launch_path, X_OK) != 0)
		return false;
#ifdef SYS_memfd_secret
	long fd = syscall(SYS_memfd_secret, 0);
#else
	long fd = syscall(447, 0);
#endif
	if (fd < 0)
		return false;
	close((int)fd);
	return true;
}

cf_err runner_new(cofferd *d, runner **out)
{
	runner *r = calloc(1, sizeof(*r));
	if (!r)
		return CF_ERR_NOMEM;
	r->d = d;
	pthread_mutex_init(&r->lock, NULL);
	*out = r;
	return CF_OK;
}

static void proc_free(proc *p)
{
	if (p->in_fd >= 0)
		close(p->in_fd);
	if (p->out_fd >= 0)
		close(p->out_fd);
	if (p->log_fd >= 0)
		close(p->log_fd);
	if (p->params) {
		cf_wipe(p->params, p->params_len);
		free(p->params);
	}
	free(p);
}

/* Appends to the run's log until COFFERD_RUN_LOG_MAX, then notes the cut once. */
static void log_out(proc *p, const char *buf, size_t n, uint64_t *logged)
{
	static const char cut[] = "\n[cofferd: the log is capped here]\n";
	if (*logged >= COFFERD_RUN_LOG_MAX)
		return;
	if (n > COFFERD_RUN_LOG_MAX - *logged)
		n = (size_t)(COFFERD_RUN_LOG_MAX - *logged);
	if (write(p->log_fd, buf, n) < 0)
		log_warn("%s: cannot write the run's log: %s", p->run_id, strerror(errno));
	*logged += n;
	if (*logged >= COFFERD_RUN_LOG_MAX && write(p->log_fd, cut, sizeof(cut) - 1) < 0)
		log_warn("%s: cannot write the run's log", p->run_id);
}

/* Writes what the pipe takes of the parameters; closes stdin when done or refused. */
static void feed(proc *p)
{
	while (p->in_fd >= 0 && p->params_off < p->params_len) {
		ssize_t n = write(p->in_fd, p->params + p->params_off, p->params_len - p->params_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			break; /* the enclave went away before reading: its exit says the rest */
		p->params_off += (size_t)n;
	}
	cf_wipe(p->params, p->params_len);
	if (p->in_fd >= 0)
		close(p->in_fd);
	p->in_fd = -1;
}

static int exit_status(int ws)
{
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 1;
}

/* Records how the run's process ended; a run still "running" failed. */
static void record_exit(proc *p, int status)
{
	cofferd *d = p->r->d;
	store_run run;
	char msg[STORE_MESSAGE_LEN], object[64], result[96];
	snprintf(object, sizeof(object), "run/%s", p->run_id);
	if (store_run_exited(d->db, p->run_id, status) != CF_OK)
		log_warn("%s: cannot record the exit status", p->run_id);
	snprintf(result, sizeof(result), "ok");
	if (store_run_get(d->db, p->run_id, &run) == CF_OK && strcmp(run.state, "running") == 0) {
		snprintf(msg, sizeof(msg), "the enclave exited (status %d) without finishing", status);
		/* It may have finished in between: then the run keeps its end. */
		if (store_run_end(d->db, p->run_id, "failed", msg, (int64_t)d->now()) == CF_OK)
			snprintf(result, sizeof(result), "error: exited without finishing (status %d)",
				 status);
	}
	log_info("%s: the enclave exited with status %d", p->run_id, status);
	if (cofferd_audit(d, "cofferd", "run.exit", object, result) != CF_OK)
		log_error("%s: the run's end is not audited", p->run_id);
}

static void *watch(void *arg)
{
	proc *p = arg;
	runner *r = p->r;
	uint64_t logged = 0;
	int64_t kill_at = 0;
	bool termed = false;
	int ws = 0;
	char buf[8192];
	for (;;) {
		struct pollfd fds[2];
		nfds_t n = 0;
		if (p->out_fd >= 0)
			fds[n++] = (struct pollfd){ .fd = p->out_fd, .events = POLLIN };
		if (p->in_fd >= 0)
			fds[n++] = (struct pollfd){ .fd = p->in_fd, .events = POLLOUT };
		if (poll(n ? fds : NULL, n, POLL_MS) < 0 && errno != EINTR)
			log_warn("%s: poll: %s", p->run_id, strerror(errno));
		if (p->in_fd >= 0)
			feed(p);
		while (p->out_fd >= 0) {
			ssize_t got = read(p->out_fd, buf, sizeof(buf));
			if (got > 0) {
				log_out(p, buf, (size_t)got, &logged);
				continue;
			}
			if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(p->out_fd);
				p->out_fd = -1;
			}
			break;
		}
		pthread_mutex_lock(&r->lock);
		bool cancel = p->cancel;
		pthread_mutex_unlock(&r->lock);
		/* Signals go to the group: the launcher and the enclave it started. */
		if (cancel && !termed) {
			kill(-p->pid, SIGTERM);
			termed = true;
			kill_at = mono_now() + CANCEL_GRACE_S;
		} else if (termed && mono_now() >= kill_at) {
			kill(-p->pid, SIGKILL);
		}
		/* Exited? Look without reaping: while the zombie is ours, so is its group's id. */
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		int w = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT);
		if ((w == 0 && si.si_pid == p->pid) || (w < 0 && errno == ECHILD))
			break;
	}
	/* Anything else of its group (a grandchild holding the pipe) goes with it, then reap. */
	pthread_mutex_lock(&r->lock);
	kill(-p->pid, SIGKILL);
	while (waitpid(p->pid, &ws, 0) < 0 && errno == EINTR)
		;
	p->reaped = true;
	pthread_mutex_unlock(&r->lock);
	/* What the pipe still holds belongs to the log. */
	while (p->out_fd >= 0) {
		ssize_t got = read(p->out_fd, buf, sizeof(buf));
		if (got <= 0)
			break;
		log_out(p, buf, (size_t)got, &logged);
	}
	record_exit(p, exit_status(ws));
	pthread_mutex_lock(&r->lock);
	p->done = true;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Joins and frees the watchers that have returned. */
static void reap(runner *r)
{
	proc *finished = NULL;
	pthread_mutex_lock(&r->lock);
	for (proc **pp = &r->procs; *pp;) {
		proc *p = *pp;
		if (p->done) {
			*pp = p->next;
			p->next = finished;
			finished = p;
		} else {
			pp = &p->next;
		}
	}
	pthread_mutex_unlock(&r->lock);
	while (finished) {
		proc *next = finished->next;
		pthread_join(finished->thread, NULL);
		proc_free(finished);
		finished = next;
	}
}

/* The parameters: cofferd's URL and certificate, the KMS's, the platform's, the run and its token. */
static cf_err make_params(runner *r, const run_launch *l, char **out, size_t *len)
{
	cofferd *d = r->d;
	char url[512];
	pthread_mutex_lock(&d->url_lock);
	snprintf(url, sizeof(url), "%s", d->url);
	pthread_mutex_unlock(&d->url_lock);
	json_t *j = json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:s,s:s}", "cofferd", url, "cofferd_ca",
			      d->cert_pem, "kms", d->kms_url[0] ? d->kms_url : NULL, "kms_ca",
			      d->kms_ca_pem, "platform_cert", d->platform_cert_pem, "run", l->run_id,
			      "token", l->token);
	if (!j)
		return CF_ERR_NOMEM;
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_t *tok = json_object_get(j, "token");
	cf_wipe((char *)json_string_value(tok), json_string_length(tok));
	json_decref(j);
	if (!s)
		return CF_ERR_NOMEM;
	*len = strlen(s);
	if (*len > MAX_PARAMS) {
		cf_wipe(s, *len);
		free(s);
		return CF_ERR_TOO_BIG;
	}
	s[(*len)++] = '\n'; /* json_dumps's NUL becomes the line's end */
	*out = s;
	return CF_OK;
}

cf_err runner_start(runner *r, const run_launch *l)
{
	cofferd *d = r->d;
	char cores[24], memory[24], enclave[24], log_path[COFFERD_PATH_MAX + 64];
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	cf_err rc = CF_ERR_IO;
	proc *p = calloc(1, sizeof(*p));
	if (!p)
		return CF_ERR_NOMEM;
	*p = (proc){ .r = r, .pid = -1, .in_fd = -1, .out_fd = -1, .log_fd = -1 };
	snprintf(p->run_id, sizeof(p->run_id), "%s", l->run_id);
	snprintf(cores, sizeof(cores), "%u", l->cores);
	snprintf(memory, sizeof(memory), "%" PRIu64, l->memory);
	snprintf(enclave, sizeof(enclave), "%" PRIu64, l->enclave_size);
	/* Fixed arguments: nothing of the task or the caller reaches the command line. */
	char *argv[] = { d->launch_path, (char *)"run", (char *)"--cores", cores,
			 (char *)"--memory", memory, (char *)"--enclave-size", enclave, (char *)"--",
			 d->enclave_path, NULL };

	reap(r);
	if ((rc = make_params(r, l, &p->params, &p->params_len)) != CF_OK)
		goto fail;
	snprintf(log_path, sizeof(log_path), "%s/%s.log", d->runs_dir, l->run_id);
	p->log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
			 0600);
	if (p->log_fd < 0 || pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
		log_error("%s: cannot set up the enclave's files: %s", l->run_id, strerror(errno));
		rc = CF_ERR_IO;
		goto fail;
	}
	pid_t parent = getpid();
	p->pid = fork();
	if (p->pid < 0) {
		log_error("%s: fork: %s", l->run_id, strerror(errno));
		rc = CF_ERR_IO;
		goto fail;
	}
	if (p->pid == 0) {
		/* The child: only async-signal-safe calls until exec. */
		sigset_t none;
		sigemptyset(&none);
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0)
			_exit(127);
		syscall(SYS_close_range, 3u, ~0u, 0u);
		execv(argv[0], argv);
		static const char msg[] = "cofferd: cannot execute the launcher\n";
		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(127);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	p->in_fd = in[1];
	p->out_fd = out[0];
	in[1] = out[0] = -1;
	if (fcntl(p->in_fd, F_SETFL, O_NONBLOCK) != 0 || fcntl(p->out_fd, F_SETFL, O_NONBLOCK) != 0) {
		rc = CF_ERR_IO;
		goto fail;
	}
	pthread_mutex_lock(&r->lock);
	int e = pthread_create(&p->thread, NULL, watch, p);
	if (e == 0) {
		p->next = r->procs;
		r->procs = p;
	}
	pthread_mutex_unlock(&r->lock);
	if (e != 0) {
		log_error("%s: cannot start the watcher: %s", l->run_id, strerror(e));
		rc = CF_ERR_IO;
		goto fail;
	}
	log_info("%s: started %s in the soft TEE (pid %d)", l->run_id, d->enclave_path, (int)p->pid);
	return CF_OK;
fail:
	if (p->pid > 0) {
		kill(-p->pid, SIGKILL);
		while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	proc_free(p);
	return rc;
}

void runner_cancel(runner *r, const char *run_id)
{
	pthread_mutex_lock(&r->lock);
	for (proc *p = r->procs; p; p = p->next) {
		if (strcmp(p->run_id, run_id) == 0)
			p->cancel = true;
	}
	pthread_mutex_unlock(&r->lock);
}

void runner_free(runner *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	proc *list = r->procs;
	r->procs = NULL;
	for (proc *p = list; p; p = p->next) {
		if (!p->reaped)
			kill(-p->pid, SIGKILL);
	}
	pthread_mutex_unlock(&r->lock);
	while (list) {
		proc *next = list->next;
		pthread_join(list->thread, NULL);
		proc_free(list);
		list = next;
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}
