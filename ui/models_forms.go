package ui

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"corral/engine/models"
)

// The models page's forms, for browsers without script; with script the
// pull runs through the API and shows its progress.

func (a *admin) modelsFail(c *gin.Context, code int, msg string) {
	v := a.modelsView(c)
	v.Error = msg
	a.pages.render(c, code, "models", pageView(c, "Models", "models", v))
}

// pullForm starts a pull and comes back to the page, which says it runs.
func (a *admin) pullForm(c *gin.Context) {
	name := strings.TrimSpace(c.PostForm("model"))
	if _, err := a.Models.Pull(name); err != nil {
		a.modelsFail(c, http.StatusBadRequest, err.Error())
		return
	}
	a.log.Info("model pull from the admin page", "model", name)
	c.Redirect(http.StatusSeeOther, "/models?done="+url.QueryEscape("Pulling "+models.Canonical(name)+": reload to see it arrive"))
}

// deleteConfirm asks before a model is deleted from every instance.
func (a *admin) deleteConfirm(c *gin.Context) {
	v := a.modelsView(c)
	v.Delete = c.Query("model")
	a.pages.render(c, http.StatusOK, "models", pageView(c, "Models", "models", v))
}

func (a *admin) deleteForm(c *gin.Context) {
	name := c.PostForm("model")
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), time.Minute)
	defer cancel()
	if err := a.Models.Delete(ctx, name); err != nil {
		a.modelsFail(c, http.StatusBadRequest, err.Error())
		return
	}
	a.log.Info("model deleted from the admin page", "model", name)
	c.Redirect(http.StatusSeeOther, "/models?done="+url.QueryEscape(models.Canonical(name)+" is deleted from every instance"))
}

// placeForm keeps a model warm on N instances or on chosen GPUs; empty
// both ends the placement.
func (a *admin) placeForm(c *gin.Context) {
	p := models.Placement{Model: c.PostForm("model"), KeepAlive: strings.TrimSpace(c.PostForm("keep_alive"))}
	replicas, gpus := strings.TrimSpace(c.PostForm("replicas")), strings.TrimSpace(c.PostForm("gpus"))
	if replicas == "" && gpus == "" {
		if err := a.Models.Unplace(p.Model); err != nil {
			a.modelsFail(c, http.StatusBadRequest, err.Error())
			return
		}
		c.Redirect(http.StatusSeeOther, "/models?done="+url.QueryEscape(models.Canonical(p.Model)+" is no longer kept warm"))
		return
	}
	if replicas != "" {
		n, err := strconv.Atoi(replicas)
		if err != nil {
			a.modelsFail(c, http.StatusBadRequest, "Instances: give a whole number, such as 2.")
			return
		}
		p.Replicas = n
	}
	for g := range strings.SplitSeq(gpus, ",") {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		n, err := strconv.Atoi(g)
		if err != nil {
			a.modelsFail(c, http.StatusBadRequest, "GPUs: give indexes separated by commas, such as 0,1.")
			return
		}
		p.GPUs = append(p.GPUs, n)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), time.Minute)
	defer cancel()
	if err := a.Models.Place(ctx, p); err != nil {
		a.modelsFail(c, http.StatusBadRequest, err.Error())
		return
	}
	c.Redirect(http.StatusSeeOther, "/models?done="+url.QueryEscape(models.Canonical(p.Model)+" is "+p.String()))
}
