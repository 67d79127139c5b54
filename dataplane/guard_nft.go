package dataplane

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// setReader reads a set's keys from the kernel; netlinkNFT implements it
// (the engine's fakes need not).
type setReader interface {
	setKeys(table, set string) ([][]byte, error)
}

var _ setReader = netlinkNFT{}

// setKeys is `nft list set inet T S`, keys only; a missing table or set
// is no error and no keys.
func (netlinkNFT) setKeys(table, set string) ([][]byte, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables connection: %w", err)
	}
	t := inetTable(table)
	s, err := c.GetSetByName(t, set)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list set inet %s %s: %w", table, set, err)
	}
	elems, err := c.GetSetElements(s)
	if err != nil {
		return nil, fmt.Errorf("list elements of set inet %s %s: %w", table, set, err)
	}
	keys := make([][]byte, 0, len(elems))
	for _, el := range elems {
		keys = append(keys, el.Key)
	}
	return keys, nil
}
