package cniattach

import (
	"context"
	"errors"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/dockerid"
)

// GC removes the attachments of network r.Network that are not in
// r.Valid (CNI GC: the runtime lists what it still has). Attachments with
// an ADD or DEL in progress are left alone. It keeps going past failures
// and reports them together.
func (s *Service) GC(ctx context.Context, r *admin.CNIGCRequest) (admin.CNIGCReport, error) {
	rep := admin.CNIGCReport{Endpoints: []string{}}
	if r.Network == "" {
		return rep, errors.Join(ErrInvalid, errors.New("no network name"))
	}
	valid := map[string]bool{}
	for _, a := range r.Valid {
		valid[EndpointID(r.Network, a.ContainerID, a.IfName)] = true
	}
	var errs []error
	for _, ep := range s.cfg.Driver.Attachments() {
		if ep.CNI.Network != r.Network || valid[ep.ID] {
			continue
		}
		if ok, err := s.removeIdle(ctx, ep.ID, "GC: not in the runtime's valid attachments"); err != nil {
			errs = append(errs, err)
		} else if ok {
			rep.Endpoints = append(rep.Endpoints, ep.ID)
		}
	}
	return rep, errors.Join(errs...)
}

// Sweep removes attachments older than grace whose container is gone
// without a DEL, or that an interrupted ADD left (driver.DeadAttachments).
// It returns the endpoints it removed.
func (s *Service) Sweep(ctx context.Context, grace time.Duration) ([]string, error) {
	dead, err := s.cfg.Driver.DeadAttachments(grace)
	errs := []error{err}
	removed := []string{}
	for _, ep := range dead {
		if ok, err := s.removeIdle(ctx, ep.ID, "container gone without DEL, or ADD interrupted"); err != nil {
			errs = append(errs, err)
		} else if ok {
			removed = append(removed, ep.ID)
		}
	}
	return removed, errors.Join(errs...)
}

// removeIdle removes an attachment unless a request holds it (then it
// reports false: the request decides).
func (s *Service) removeIdle(ctx context.Context, id, why string) (bool, error) {
	unlock, ok := s.tryLock(id)
	if !ok {
		return false, nil
	}
	defer unlock()
	return true, s.remove(ctx, id, why)
}

// Run sweeps every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval, grace time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		removed, err := s.Sweep(ctx, grace)
		if err != nil {
			s.log.Warn("CNI attachment sweep incomplete", "err", err)
		}
		if len(removed) > 0 {
			short := make([]string, len(removed))
			for i, id := range removed {
				short[i] = dockerid.Short(id)
			}
			s.log.Info("dead CNI attachments removed", "endpoints", short)
		}
	}
}
