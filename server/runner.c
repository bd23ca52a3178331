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
 *
 * Warm spares: the launcher's start (pre-faulting the enclave's secretmem
 * arena, about 17 us a page: 2.2 s for 512 MiB) happens before the enclave
 * reads its parameters, so a process started ahead of time waits, warm,
 * as a running confidential VM would. Each run takes the spare of its size
 * if one is alive and leaves a new one behind; starting an instance makes
 * one. The spare is the same program with the same arguments (the same
 * measurement) and learns its run only from its standard input.
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
	unsigned cores;   /* the instance's size, to warm the next enclave once this one ends */
	uint64_t memory, enclave_size;
} proc;

/* A launched enclave waiting for its parameters (no watcher, no run yet). */
typedef struct spare {
	struct spare *next;
	pid_t pid;
	int in_fd, out_fd;
	unsigned cores;
	uint64_t memory, enclave_size;
} spare;

#define MAX_WANTED 8

typedef struct spare_size {
	unsigned cores;
	uint64_t memory, enclave_size;
} spare_size;

struct runner {
	cofferd *d;
	pthread_mutex_t lock;
	proc *procs;
	bool warm;
	/*
	 * Spares are forked by one long-lived thread: PR_SET_PDEATHSIG follows
	 * the forking thread, so a watcher (which returns) cannot fork them.
	 */
	pthread_t spawner;
	bool spawner_started;
	pthread_cond_t wake;
	bool stopping;                /* under lock */
	spare *spares;                /* under lock */
	spare_size wanted[MAX_WANTED]; /* under lock: sizes to warm */
	size_t nwanted;
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
	r->warm = d->warm_spares;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, NULL);
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
	/* Warmed after the run, not beside it: pre-faulting would take its CPU. */
	runner_prewarm(r, p->cores, p->memory, p->enclave_size);
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

/* Kills and reaps a spare's process group and frees it. */
static void spare_free(spare *sp)
{
	if (!sp)
		return;
	if (sp->pid > 0) {
		kill(-sp->pid, SIGKILL);
		while (waitpid(sp->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (sp->in_fd >= 0)
		close(sp->in_fd);
	if (sp->out_fd >= 0)
		close(sp->out_fd);
	free(sp);
}

/*
 * Forks coffer-launch with the instance's size, stdin and stdout/stderr on
 * pipes (non-blocking on cofferd's side). The fixed arguments are the only
 * ones: nothing of the task or the caller reaches the command line.
 */
static cf_err spawn(runner *r, unsigned ncores, uint64_t nmemory, uint64_t nenclave, spare **out)
{
	cofferd *d = r->d;
	char cores[24], memory[24], enclave[24];
	int in[2] = { -1, -1 }, pout[2] = { -1, -1 };
	snprintf(cores, sizeof(cores), "%u", ncores);
	snprintf(memory, sizeof(memory), "%" PRIu64, nmemory);
	snprintf(enclave, sizeof(enclave), "%" PRIu64, nenclave);
	char *argv[] = { d->launch_path, (char *)"run", (char *)"--cores", cores,
			 (char *)"--memory", memory, (char *)"--enclave-size", enclave, (char *)"--",
			 d->enclave_path, NULL };
	spare *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return CF_ERR_NOMEM;
	*sp = (spare){ .pid = -1, .in_fd = -1, .out_fd = -1, .cores = ncores, .memory = nmemory,
		       .enclave_size = nenclave };
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(pout, O_CLOEXEC) != 0) {
		log_error("cannot make the enclave's pipes: %s", strerror(errno));
		goto fail;
	}
	pid_t parent = getpid();
	sp->pid = fork();
	if (sp->pid < 0) {
		log_error("fork: %s", strerror(errno));
		goto fail;
	}
	if (sp->pid == 0) {
		/* The child: only async-signal-safe calls until exec. */
		sigset_t none;
		sigemptyset(&none);
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(in[0], 0) < 0 || dup2(pout[1], 1) < 0 || dup2(pout[1], 2) < 0)
			_exit(127);
		syscall(SYS_close_range, 3u, ~0u, 0u);
		execv(argv[0], argv);
		static const char msg[] = "cofferd: cannot execute the launcher\n";
		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(127);
		_exit(127);
	}
	close(in[0]);
	close(pout[1]);
	sp->in_fd = in[1];
	sp->out_fd = pout[0];
	if (fcntl(sp->in_fd, F_SETFL, O_NONBLOCK) != 0 || fcntl(sp->out_fd, F_SETFL, O_NONBLOCK) != 0) {
		spare_free(sp);
		return CF_ERR_IO;
	}
	*out = sp;
	return CF_OK;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (pout[i] >= 0)
			close(pout[i]);
	}
	spare_free(sp);
	return CF_ERR_IO;
}

/* Takes the live spare of this size, if any; dead ones are reaped on the way. */
static spare *take_spare(runner *r, unsigned cores, uint64_t memory, uint64_t enclave)
{
	spare *found = NULL, *dead = NULL;
	pthread_mutex_lock(&r->lock);
	for (spare **pp = &r->spares; *pp;) {
		spare *sp = *pp;
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		int w = waitid(P_PID, (id_t)sp->pid, &si, WEXITED | WNOHANG | WNOWAIT);
		bool exited = (w == 0 && si.si_pid == sp->pid) || (w < 0 && errno == ECHILD);
		if (exited || (!found && sp->cores == cores && sp->memory == memory &&
			       sp->enclave_size == enclave)) {
			*pp = sp->next;
			if (exited) {
				log_warn("a warm enclave (pid %d) had exited; not used", (int)sp->pid);
				sp->next = dead;
				dead = sp;
			} else {
				found = sp;
			}
			continue;
		}
		pp = &sp->next;
	}
	pthread_mutex_unlock(&r->lock);
	while (dead) {
		spare *next = dead->next;
		spare_free(dead);
		dead = next;
	}
	return found;
}

static bool same_size(const spare_size *a, unsigned cores, uint64_t memory, uint64_t enclave)
{
	return a->cores == cores && a->memory == memory && a->enclave_size == enclave;
}

static void *spawner(void *arg)
{
	runner *r = arg;
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->stopping && r->nwanted == 0)
			pthread_cond_wait(&r->wake, &r->lock);
		if (r->stopping)
			break;
		spare_size want = r->wanted[0];
		memmove(r->wanted, r->wanted + 1, (r->nwanted - 1) * sizeof(r->wanted[0]));
		r->nwanted--;
		pthread_mutex_unlock(&r->lock);
		spare *sp = NULL;
		cf_err rc = spawn(r, want.cores, want.memory, want.enclave_size, &sp);
		pthread_mutex_lock(&r->lock);
		if (rc != CF_OK)
			continue;
		if (r->stopping) {
			pthread_mutex_unlock(&r->lock);
			spare_free(sp);
			pthread_mutex_lock(&r->lock);
			break;
		}
		sp->next = r->spares;
		r->spares = sp;
		log_info("a warm enclave (pid %d) waits for a run: %u cores, %" PRIu64 " bytes, enclave %" PRIu64
			 " bytes", (int)sp->pid, want.cores, want.memory, want.enclave_size);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

void runner_prewarm(runner *r, unsigned cores, uint64_t memory, uint64_t enclave)
{
	if (!r->warm)
		return;
	pthread_mutex_lock(&r->lock);
	bool have = r->stopping;
	for (spare *sp = r->spares; sp; sp = sp->next)
		have |= sp->cores == cores && sp->memory == memory && sp->enclave_size == enclave;
	for (size_t i = 0; i < r->nwanted; i++)
		have |= same_size(&r->wanted[i], cores, memory, enclave);
	if (!have && !r->spawner_started) {
		r->spawner_started = pthread_create(&r->spawner, NULL, spawner, r) == 0;
		if (!r->spawner_started)
			log_warn("cannot start the thread that warms enclaves; runs start cold");
	}
	if (!have && r->spawner_started && r->nwanted < MAX_WANTED) {
		r->wanted[r->nwanted++] = (spare_size){ cores, memory, enclave };
		pthread_cond_signal(&r->wake);
	}
	pthread_mutex_unlock(&r->lock);
}

void runner_drop_spares(runner *r, unsigned cores, uint64_t memory, uint64_t enclave)
{
	spare *sp = take_spare(r, cores, memory, enclave);
	spare_free(sp);
}

cf_err runner_start(runner *r, const run_launch *l)
{
	cofferd *d = r->d;
	char log_path[COFFERD_PATH_MAX + 64];
	cf_err rc = CF_ERR_IO;
	proc *p = calloc(1, sizeof(*p));
	if (!p)
		return CF_ERR_NOMEM;
	*p = (proc){ .r = r, .pid = -1, .in_fd = -1, .out_fd = -1, .log_fd = -1 };
	snprintf(p->run_id, sizeof(p->run_id), "%s", l->run_id);

	reap(r);
	if ((rc = make_params(r, l, &p->params, &p->params_len)) != CF_OK)
		goto fail;
	snprintf(log_path, sizeof(log_path), "%s/%s.log", d->runs_dir, l->run_id);
	p->log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
			 0600);
	if (p->log_fd < 0) {
		log_error("%s: cannot open the run's log: %s", l->run_id, strerror(errno));
		rc = CF_ERR_IO;
		goto fail;
	}
	spare *sp = take_spare(r, l->cores, l->memory, l->enclave_size);
	bool warm = sp != NULL;
	if (!sp && (rc = spawn(r, l->cores, l->memory, l->enclave_size, &sp)) != CF_OK)
		goto fail;
	p->pid = sp->pid;
	p->in_fd = sp->in_fd;
	p->out_fd = sp->out_fd;
	free(sp);
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
	log_info("%s: %s %s in the soft TEE (pid %d)", l->run_id, warm ? "handed to the warm" : "started",
		 d->enclave_path, (int)p->pid);
	p->cores = l->cores;
	p->memory = l->memory;
	p->enclave_size = l->enclave_size;
	return CF_OK;
fail:
	if (p->pid > 0) {
		kill(-p->pid, SIGKILL);
		while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
			;
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
	r->stopping = true;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	if (r->spawner_started)
		pthread_join(r->spawner, NULL);
	pthread_mutex_lock(&r->lock);
	proc *list = r->procs;
	r->procs = NULL;
	spare *spares = r->spares;
	r->spares = NULL;
	for (proc *p = list; p; p = p->next) {
		if (!p->reaped)
			kill(-p->pid, SIGKILL);
	}
	pthread_mutex_unlock(&r->lock);
	while (spares) {
		spare *next = spares->next;
		spare_free(spares);
		spares = next;
	}
	while (list) {
		proc *next = list->next;
		pthread_join(list->thread, NULL);
		proc_free(list);
		list = next;
	}
	pthread_cond_destroy(&r->wake);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
