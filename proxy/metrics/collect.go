package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// phases are the engine's instance phases; corral_instance_phase shows
// each of them for every instance (1 for the current one), so a query for
// a phase finds a 0 rather than nothing.
var phases = [...]string{"pending", "pulling", "starting", "healthy", "unhealthy", "failed", "draining"}

// instanceCollector reads the instances at scrape time.
type instanceCollector struct {
	read  func() []InstanceInfo
	up    *prometheus.Desc
	phase *prometheus.Desc
}

func newInstanceCollector(read func() []InstanceInfo) *instanceCollector {
	return &instanceCollector{
		read: read,
		up: prometheus.NewDesc("corral_instance_up",
			"Whether the instance is healthy (1) or not (0).", []string{"instance", "gpu"}, nil),
		phase: prometheus.NewDesc("corral_instance_phase",
			"The instance's phase: 1 for the current one, 0 for the others.", []string{"instance", "phase"}, nil),
	}
}

func (c *instanceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.phase
}

func (c *instanceCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	for _, in := range c.read() {
		if seen[in.Name] {
			continue // a second series with the same labels fails the scrape
		}
		seen[in.Name] = true
		up := 0.0
		if in.Healthy {
			up = 1
		}
		ch <- gauge(c.up, up, in.Name, in.GPU)
		known := false
		for _, p := range phases {
			v := 0.0
			if p == in.Phase {
				v, known = 1, true
			}
			ch <- gauge(c.phase, v, in.Name, p)
		}
		if !known && in.Phase != "" {
			ch <- gauge(c.phase, 1, in.Name, in.Phase)
		}
	}
}

// gpuCollector reads the GPU samples at scrape time.
type gpuCollector struct {
	read                                  func() []GPUInfo
	util, memUsed, memTotal, temp, powerW *prometheus.Desc
}

func newGPUCollector(read func() []GPUInfo) *gpuCollector {
	labels := []string{"gpu", "uuid", "name"}
	return &gpuCollector{
		read:     read,
		util:     prometheus.NewDesc("corral_gpu_utilization_ratio", "Fraction of time the GPU was busy over the last sample period (0..1).", labels, nil),
		memUsed:  prometheus.NewDesc("corral_gpu_memory_used_bytes", "GPU memory in use.", labels, nil),
		memTotal: prometheus.NewDesc("corral_gpu_memory_total_bytes", "GPU memory in all.", labels, nil),
		temp:     prometheus.NewDesc("corral_gpu_temperature_celsius", "GPU core temperature.", labels, nil),
		powerW:   prometheus.NewDesc("corral_gpu_power_watts", "GPU power draw.", labels, nil),
	}
}

func (c *gpuCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.util
	ch <- c.memUsed
	ch <- c.memTotal
	ch <- c.temp
	ch <- c.powerW
}

func (c *gpuCollector) Collect(ch chan<- prometheus.Metric) {
	for _, g := range c.read() {
		lv := []string{strconv.Itoa(g.Index), g.UUID, g.Name}
		ch <- gauge(c.util, g.Utilization, lv...)
		if g.MemoryTotal > 0 {
			ch <- gauge(c.memUsed, float64(g.MemoryUsed), lv...)
			ch <- gauge(c.memTotal, float64(g.MemoryTotal), lv...)
		}
		if g.TemperatureC > 0 {
			ch <- gauge(c.temp, g.TemperatureC, lv...)
		}
		if g.PowerW > 0 {
			ch <- gauge(c.powerW, g.PowerW, lv...)
		}
	}
}

// gauge builds a gauge sample; a label value that is not valid UTF-8
// yields an invalid metric, which fails that series, not the scrape.
func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}
