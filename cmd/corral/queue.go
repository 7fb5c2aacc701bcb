package main

import (
	"fmt"
	"time"

	"corral/proxy/scheduler"
)

// queueConfig is the scheduler's part of serve's flags.
type queueConfig struct {
	Scheduling string
	MaxWait    time.Duration
	MaxQueue   int
}

func (q *queueConfig) flags(fs *flagSet) {
	fs.StringVar(&q.Scheduling, "scheduling", "fair", "fair: requests wait in corral's queue while every instance with their model is busy, shared fairly between keys; pass-through: each goes at once to the least busy instance with its model and waits inside Ollama")
	fs.DurationVar(&q.MaxWait, "queue-max-wait", 5*time.Minute, "longest a request waits in corral's queue for an instance before a 429 with Retry-After (a key's own limit wins)")
	fs.IntVar(&q.MaxQueue, "queue-max", 256, "most requests one key may have waiting in corral's queue; beyond, 429 with Retry-After (a key's own limit wins)")
}

// validate returns one error per problem.
func (q queueConfig) validate() []error {
	var errs []error
	if q.Scheduling != "fair" && q.Scheduling != "pass-through" {
		errs = append(errs, fmt.Errorf("--scheduling %q: use fair or pass-through", q.Scheduling))
	}
	if q.MaxWait < time.Second {
		errs = append(errs, fmt.Errorf("--queue-max-wait %s: use 1s or more", q.MaxWait))
	}
	if q.MaxQueue < 1 {
		errs = append(errs, fmt.Errorf("--queue-max %d: use 1 or more", q.MaxQueue))
	}
	return errs
}

func (q queueConfig) schedulerConfig() scheduler.Config {
	return scheduler.Config{MaxWait: q.MaxWait, MaxQueue: q.MaxQueue, PassThrough: q.Scheduling == "pass-through"}
}
