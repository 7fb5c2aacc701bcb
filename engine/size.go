package engine

import "strconv"

// IECBytes writes a byte count in binary units (KiB, MiB, GiB, ...), with
// one decimal, as the CLI, logs and reasons show sizes. The unit is the
// largest that keeps the number at 1 or more, so a size never reads as a
// misleading 0.0 GiB: 40 MiB is "40.0 MiB". Under 1 KiB it is whole
// bytes. (The admin pages write decimal GB, as Ollama does: ui.)
func IECBytes(n int64) string {
	if n < 0 {
		return "-" + IECBytes(-n)
	}
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	const units = "KMGTPE"
	v := float64(n) / 1024
	i := 0
	// 1023.96 KiB rounds to 1024.0: write 1.0 MiB instead.
	for v >= 1023.95 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i:i+1] + "iB"
}
