package main

import (
	"log/slog"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notify tells systemd (podnetd.service is Type=notify) about podnetd's
// state: daemon.SdNotifyReady once it can serve Docker, so that
// docker.service, ordered after it, starts only then; SdNotifyStopping on
// the way out. Without NOTIFY_SOCKET (the lab, the managed plugin, a shell)
// it does nothing.
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("could not notify systemd", "state", state, "err", err)
	}
}
