package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Instance is one desired Ollama instance as stored. The engine owns its
// meaning; the store only keeps it.
type Instance struct {
	Name     string            `json:"name"`
	Index    int               `json:"index"`
	GPU      string            `json:"gpu"` // device UUID, or "cpu"
	GPUIndex int               `json:"gpu_index"`
	Image    string            `json:"image"`
	Env      map[string]string `json:"env,omitempty"`
	Weight   int               `json:"weight,omitempty"`
	// The fields below describe a companion container instead (the chat
	// UI, or a database it needs); an Ollama instance leaves them empty.
	Role   string   `json:"role,omitempty"`   // empty: an Ollama instance
	Port   int      `json:"port,omitempty"`   // the port it serves on the private network
	Health string   `json:"health,omitempty"` // HTTP path its health check GETs; "tcp": a connect
	Volume string   `json:"volume,omitempty"` // named volume for its data
	Mount  string   `json:"mount,omitempty"`  // where Volume is mounted
	After  []string `json:"after,omitempty"`  // companions that must be healthy before it starts
	Cmd    []string `json:"cmd,omitempty"`    // the image's command, when it needs one
	// Hosts are extra name resolutions, "name:address" as Docker's
	// --add-host takes them ("host-gateway" is the host itself).
	Hosts []string `json:"hosts,omitempty"`
}

// Instances lists the desired instances in name order.
func (s *Store) Instances() ([]Instance, error) {
	var out []Instance
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInstances).ForEach(func(k, v []byte) error {
			var in Instance
			if err := json.Unmarshal(v, &in); err != nil {
				return fmt.Errorf("store: decode instance %s: %w", k, err)
			}
			out = append(out, in)
			return nil
		})
	})
	return out, err
}

// ReplaceInstances makes the stored set exactly list, atomically.
func (s *Store) ReplaceInstances(list []Instance) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketInstances); err != nil {
			return fmt.Errorf("store: clear instances: %w", err)
		}
		b, err := tx.CreateBucket(bucketInstances)
		if err != nil {
			return fmt.Errorf("store: create instances: %w", err)
		}
		for _, in := range list {
			raw, err := json.Marshal(in)
			if err != nil {
				return fmt.Errorf("store: encode instance %s: %w", in.Name, err)
			}
			if err := b.Put([]byte(in.Name), raw); err != nil {
				return fmt.Errorf("store: put instance %s: %w", in.Name, err)
			}
		}
		return nil
	})
}
