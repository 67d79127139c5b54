package nd

import (
	"net"
	"net/netip"

	"github.com/mdlayher/ndp"
)

// Advert is the neighbor advertisement saying target is at mac. An owner
// of the address (a takeover, an unsolicited announcement) sets override;
// a proxy does not, so that the owner's own answer wins.
func Advert(target netip.Addr, mac net.HardwareAddr, solicited, override bool) *ndp.NeighborAdvertisement {
	return &ndp.NeighborAdvertisement{Solicited: solicited, Override: override, TargetAddress: target,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}}}
}
