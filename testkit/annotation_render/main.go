// Command annotation-render expands alert annotation templates as Grafana's alert state manager
// does, so tests can check them in the real engine rather than in a Python imitation.
//
// Grafana expands every annotation with Go's text/template and the Prometheus template functions
// (humanize, humanizeDuration, ...), with missingkey=invalid, after binding $labels, $values and
// $value. $values maps a refId to its series' labels and value; on an evaluation error or NoData it
// is empty, so $values.A is no value at all (not a zero). On a failed expansion Grafana keeps the
// template text itself as the annotation: that is what "text" carries then, with "error" set.
//
// Input on stdin, output on stdout, both JSON: see request and outcome below.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/template"
)

// sample is one refId's result: the field names are the ones templates read ($values.A.Value).
type sample struct {
	Labels map[string]string
	Value  float64
}

// scope is what a template sees as "." ($labels, $values, $value are bound to its fields).
type scope struct {
	Labels map[string]string
	Values map[string]sample
	Value  string
}

type sampleIn struct {
	Labels map[string]string `json:"labels"`
	Value  *float64          `json:"value"` // null: a refId without a number (NaN)
}

type caseIn struct {
	ID          string              `json:"id"`
	Annotations map[string]string   `json:"annotations"`
	Labels      map[string]string   `json:"labels"`
	Values      map[string]sampleIn `json:"values"`
	Value       string              `json:"value"`
}

type request struct {
	ExternalURL string   `json:"external_url"`
	EvaluatedAt int64    `json:"evaluated_at_ms"`
	Cases       []caseIn `json:"cases"`
}

type expansion struct {
	Text  string `json:"text"`
	Error string `json:"error,omitempty"`
}

type outcome struct {
	ID          string               `json:"id"`
	Annotations map[string]expansion `json:"annotations"`
}

// bindings makes the variables a Grafana annotation can use without declaring them.
const bindings = "{{- $labels := .Labels -}}{{- $values := .Values -}}{{- $value := .Value -}}"

func noQueries(context.Context, string, time.Time) (promql.Vector, error) {
	return nil, nil // Grafana offers no query() in annotations either
}

func toScope(c caseIn) scope {
	values := make(map[string]sample, len(c.Values))
	for ref, in := range c.Values {
		v := math.NaN()
		if in.Value != nil {
			v = *in.Value
		}
		values[ref] = sample{Labels: in.Labels, Value: v}
	}
	labels := c.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return scope{Labels: labels, Values: values, Value: c.Value}
}

func expand(name, text string, data scope, at model.Time, external *url.URL) expansion {
	expander := template.NewTemplateExpander(
		context.Background(), bindings+text, "__alert_"+name, data, at, noQueries, external,
		[]string{"missingkey=invalid"},
	)
	out, err := expander.Expand()
	if err != nil {
		return expansion{Text: text, Error: err.Error()}
	}
	return expansion{Text: out}
}

func run() error {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	external, err := url.Parse(req.ExternalURL)
	if err != nil {
		return fmt.Errorf("external_url: %w", err)
	}
	at := model.Time(req.EvaluatedAt)
	results := make([]outcome, 0, len(req.Cases))
	for _, c := range req.Cases {
		data := toScope(c)
		expanded := make(map[string]expansion, len(c.Annotations))
		for key, text := range c.Annotations {
			expanded[key] = expand(key, text, data, at, external)
		}
		results = append(results, outcome{ID: c.ID, Annotations: expanded})
	}
	return json.NewEncoder(os.Stdout).Encode(results)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "annotation-render:", err)
		os.Exit(2)
	}
}
