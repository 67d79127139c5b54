package main

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
)

// arpWhoHas broadcasts one ARP request for ip and prints the sender MAC
// of every reply for it within a second: more than one line means more
// than one machine answers for the address.
func arpWhoHas(iface, ip string) error {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return err
	}
	target, err := netip.ParseAddr(ip)
	if err != nil {
		return err
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Request(target); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Second)
	_ = c.SetReadDeadline(deadline)
	for time.Now().Before(deadline) {
		p, _, err := c.Read()
		if err != nil {
			break
		}
		if p.Operation == arp.OperationReply && p.SenderIP == target {
			fmt.Println(p.SenderHardwareAddr)
		}
	}
	return nil
}
