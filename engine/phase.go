package engine

import "time"

// Phase is where an instance is in its life. Transitions:
// pending → pulling → starting → healthy ⇄ unhealthy, any → failed (with
// a reason), and draining on the way out; stopped while the owner keeps
// it down.
type Phase string

const (
	PhasePending   Phase = "pending"
	PhasePulling   Phase = "pulling"
	PhaseStarting  Phase = "starting"
	PhaseHealthy   Phase = "healthy"
	PhaseUnhealthy Phase = "unhealthy"
	PhaseFailed    Phase = "failed"
	PhaseDraining  Phase = "draining"
	// PhaseStopped: the owner stopped it; it stays down, across restarts
	// of corral, until started again.
	PhaseStopped Phase = "stopped"
)

// InstanceStatus is what status, the CLI and the pages show of an instance.
type InstanceStatus struct {
	Name        string    `json:"name"`
	GPU         string    `json:"gpu"`
	GPUIndex    int       `json:"gpu_index"`
	Phase       Phase     `json:"phase"`
	Reason      string    `json:"reason"`
	ContainerID string    `json:"container_id"`
	Image       string    `json:"image"`
	Endpoint    string    `json:"endpoint"`
	Weight      int       `json:"weight"`
	Since       time.Time `json:"since"`
	// LastExit is the latest time its container exited without corral
	// asking (a crash, a kill, OOM), and why; nil if it never did.
	LastExit *Exit `json:"last_exit,omitempty"`
}

// Exit is a container's exit that corral did not ask for.
type Exit struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Status is the engine's view of the world at one moment.
type Status struct {
	Namespace string `json:"namespace"`
	// Docker is "ok", or says why the engine cannot reach Docker.
	Docker    string           `json:"docker"`
	Instances []InstanceStatus `json:"instances"`
	// Apps are the companion containers: the chat UI and what it needs.
	Apps []AppStatus `json:"apps,omitempty"`
}

// AppStatus is what status shows of a companion container.
type AppStatus struct {
	Name        string    `json:"name"`
	Role        string    `json:"role"`
	Phase       Phase     `json:"phase"`
	Reason      string    `json:"reason"`
	ContainerID string    `json:"container_id"`
	Image       string    `json:"image"`
	Endpoint    string    `json:"endpoint"`
	Volume      string    `json:"volume,omitempty"`
	Since       time.Time `json:"since"`
}
