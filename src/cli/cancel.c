/*
 * SIGINT/SIGTERM for long commands (sync, verify): the first signal asks the
 * library to wind the run down (ds_sync_cancel: the file in flight is
 * aborted, what was published is recorded, the lease released); a second
 * one exits at once. The exit status is 128 + the first signal's number
 * (130 for SIGINT, 143 for SIGTERM), as shells report a process killed by it.
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "sync_cli.h"

static ds_sync_t *volatile cancel_sync;
static ds_engine_t *volatile cancel_engine;
static volatile sig_atomic_t cancel_sig;

static void on_signal(int sig)
{
    if (cancel_sig != 0)
        _exit(128 + sig);
    cancel_sig = sig;
    if (cancel_engine != NULL)
        ds_engine_cancel(cancel_engine); /* wakes its loop at once */
    else if (cancel_sync != NULL)
        ds_sync_cancel(cancel_sync);
}

static volatile sig_atomic_t hup_pending;

/* SIGHUP: the engine reloads its caps; one that comes before the engine
 * exists (during the scan) is kept for it, never the default "terminate". */
static void on_hup(int sig)
{
    (void)sig;
    if (cancel_engine != NULL)
        ds_engine_reload(cancel_engine);
    else
        hup_pending = 1;
}

void sync_cli_engine(ds_engine_t *e)
{
    cancel_engine = e;
    if (e != NULL && cancel_sig != 0)
        ds_engine_cancel(e);
    if (e != NULL && hup_pending) {
        hup_pending = 0;
        ds_engine_reload(e);
    }
}

void sync_cli_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: poll(2) returns at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hup;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
}

void sync_cli_cancel_target(ds_sync_t *sy)
{
    cancel_sync = sy;
    if (sy != NULL && cancel_sig != 0)
        ds_sync_cancel(sy); /* a signal came before the state was open */
}

int sync_cli_cancelled(void)
{
    return cancel_sig ? 128 + cancel_sig : 0;
}
