package admin

import "time"

// Status is GET /v1/status.
type Status struct {
	Host          string    `json:"host"`
	Version       string    `json:"version"`
	Started       time.Time `json:"started"`
	Ready         bool      `json:"ready"`
	EtcdEndpoints []string  `json:"etcdEndpoints"`
	EtcdEmbedded  bool      `json:"etcdEmbedded"`
	EtcdHealthy   bool      `json:"etcdHealthy"`
	EtcdError     string    `json:"etcdError,omitempty"`
	PluginSocket  string    `json:"pluginSocket"`
	Modes         []string  `json:"modes"`
	Networks      int       `json:"networks"`
	Endpoints     int       `json:"endpoints"`
}

// GCReport is POST /v1/gc.
type GCReport struct {
	Endpoints []string `json:"endpoints"`
	Networks  []string `json:"networks"`
	Links     []string `json:"links"`
	Addresses []string `json:"addresses"`
	Pools     []string `json:"pools"`
}
