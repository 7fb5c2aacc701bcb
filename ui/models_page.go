package ui

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"corral/engine"
	"corral/engine/models"
)

// modelsView is the models page's data; the table partial uses it alone.
type modelsView struct {
	Models      []modelRow
	Total       int // instances
	Healthy     int
	NamePattern string
	NameHint    string
	Delete      string // a model whose deletion waits for a yes
	Done, Error string
	CSRF        string // for the table's forms, which the script also renders alone
}

// modelRow is one catalogue entry, worded for people.
type modelRow struct {
	Name         string
	Size         string
	Family       string
	Parameters   string
	Quantization string
	On           []models.Presence
	Placement    string
}

func (a *admin) modelsView(c *gin.Context) modelsView {
	v := modelsView{NamePattern: importNamePattern, NameHint: importNameHint, CSRF: pageView(c, "", "", nil).CSRF}
	for _, in := range a.Engine.Status().Instances {
		v.Total++
		if in.Phase == engine.PhaseHealthy {
			v.Healthy++
		}
	}
	for _, m := range a.Models.Catalogue() {
		row := modelRow{
			Name: m.Name, Size: humanBytes(m.Size), Family: orDash(m.Family),
			Parameters: orDash(m.ParameterSize), Quantization: orDash(m.Quantization),
			On: m.Instances, Placement: "—",
		}
		if m.Placement != nil {
			row.Placement = m.Placement.String()
		}
		v.Models = append(v.Models, row)
	}
	return v
}

func (a *admin) modelsPage(c *gin.Context) {
	v := a.modelsView(c)
	v.Done = c.Query("done")
	a.pages.render(c, http.StatusOK, "models", pageView(c, "Models", "models", v))
}

// modelsTable is the table alone, for the page's script to swap in after
// an import.
func (a *admin) modelsTable(c *gin.Context) {
	v := a.modelsView(c)
	a.pages.fragment(c, "models", "models_table", v)
}

// humanBytes uses decimal units, as Ollama's own listings do.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	prec := 1
	if v >= 100 {
		prec = 0
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + string("KMGTP"[exp]) + "B"
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
