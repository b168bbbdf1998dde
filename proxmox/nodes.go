package proxmox

import (
	"context"
	"fmt"

	"github.com/taskfleet/taskfleet/task"
)

// Node is a node of a remote.
type Node struct {
	Name        string // node name, as used in /nodes/{node}/...
	Online      bool   // status "online"
	Fingerprint string // SHA-256 of the node's certificate, when PVE reports it
}

// nodeItem is one entry of GET /nodes.
type nodeItem struct {
	Node           string `json:"node"`
	Status         string `json:"status"`
	SSLFingerprint string `json:"ssl_fingerprint"`
}

// Nodes lists the remote's nodes: for PVE GET /nodes (status "online",
// "offline" or "unknown"); a PBS remote is one node, "localhost", and no
// request is made.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	if c.cfg.Kind == task.PBS {
		return []Node{{Name: pbsNode, Online: true}}, nil
	}
	var nodes []Node
	err := c.get(ctx, call{path: "/api2/json/nodes"}, func(b *body, _ string) error {
		dec := b.json()
		var items []nodeItem
		if _, err := decodeData(dec, &items); err != nil {
			return err
		}
		nodes = make([]Node, 0, len(items))
		for i, it := range items {
			if it.Node == "" {
				return &shapeError{reason: fmt.Sprintf("node item %d has no name", i), offset: -1}
			}
			nodes = append(nodes, Node{Name: it.Node, Online: it.Status == "online", Fingerprint: it.SSLFingerprint})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return nodes, nil
}
