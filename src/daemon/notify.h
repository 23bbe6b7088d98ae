/* The systemd readiness protocol (sd_notify) without libsystemd: Type=notify units. */
#ifndef ASYNCD_NOTIFY_H
#define ASYNCD_NOTIFY_H

/* Sends state ("READY=1", "STOPPING=1", "STATUS=...") as one datagram to the AF_UNIX socket
 * $NOTIFY_SOCKET names (a leading '@' is the abstract namespace). Returns 0 when sent or when
 * NOTIFY_SOCKET is unset (no supervisor listens); -1 when it could not be sent, which the caller
 * logs: a supervisor that never hears READY=1 stops the unit at its start timeout. */
int notify_send(const char *state);

#endif
