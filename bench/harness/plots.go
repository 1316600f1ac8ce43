package harness

import (
	"fmt"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/ringbroker/ringbroker/bench/perf"
)

// writePlots draws, per scenario, a throughput bar chart (MB/s per target)
// and, where latencies were measured, the latency percentile curves of the
// targets. It returns the file names written.
func writePlots(dir string, res *Results) ([]string, error) {
	var files []string
	order := []string{}
	seen := map[string]bool{}
	for _, r := range res.Runs {
		if !seen[r.Scenario] {
			seen[r.Scenario] = true
			order = append(order, r.Scenario)
		}
	}
	for _, sc := range order {
		var names []string
		var values plotter.Values
		type curve struct {
			name string
			pts  []perf.Point
		}
		var curves []curve
		for _, r := range res.Runs {
			if r.Scenario != sc || !r.OK() {
				continue
			}
			names = append(names, r.Target)
			values = append(values, r.MBPerSec)
			switch {
			case r.E2E != nil:
				curves = append(curves, curve{r.Target, r.E2E.Curve})
			case r.Produce != nil:
				curves = append(curves, curve{r.Target, r.Produce.Curve})
			}
		}
		if len(values) == 0 {
			continue
		}
		p := plot.New()
		p.Title.Text = sc + ": throughput (higher is better)"
		p.Y.Label.Text = "MB/s (MiB/s)"
		bars, err := plotter.NewBarChart(values, vg.Points(28))
		if err != nil {
			return files, err
		}
		bars.Color = plotutil.Color(0)
		p.Add(bars)
		p.NominalX(names...)
		name := fmt.Sprintf("throughput-%s.png", sc)
		if err := p.Save(7*vg.Inch, 4*vg.Inch, filepath.Join(dir, name)); err != nil {
			return files, err
		}
		files = append(files, name)

		if len(curves) == 0 {
			continue
		}
		lp := plot.New()
		lp.Title.Text = sc + ": latency by percentile (lower is better)"
		lp.X.Label.Text = "percentile"
		lp.Y.Label.Text = "latency ms (log scale)"
		// Log scale: a p50 of 1 ms and a p99.9 of 1 s must both be legible.
		lp.Y.Scale = plot.LogScale{}
		lp.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		lp.X.Tick.Marker = plot.ConstantTicks([]plot.Tick{
			{Value: 0, Label: "0"}, {Value: 1, Label: "90"}, {Value: 2, Label: "99"},
			{Value: 3, Label: "99.9"}, {Value: 4, Label: "99.99"},
		})
		for i, c := range curves {
			xys := make(plotter.XYs, 0, len(c.pts))
			for _, pt := range c.pts {
				xys = append(xys, plotter.XY{X: nines(pt.Percentile), Y: max(pt.Ms, minPlotMs)})
			}
			line, err := plotter.NewLine(xys)
			if err != nil {
				return files, err
			}
			line.Color = plotutil.Color(i)
			line.Dashes = plotutil.Dashes(i)
			line.Width = vg.Points(1.5)
			lp.Add(line)
			lp.Legend.Add(c.name, line)
		}
		lp.Legend.Top = true
		lp.Legend.Left = true
		name = fmt.Sprintf("latency-%s.png", sc)
		if err := lp.Save(7*vg.Inch, 4*vg.Inch, filepath.Join(dir, name)); err != nil {
			return files, err
		}
		files = append(files, name)
	}
	return files, nil
}

// minPlotMs is the floor of latency plots (log scale cannot show 0).
const minPlotMs = 0.001

// nines maps a percentile to the log scale of latency plots: 90 → 1,
// 99 → 2, 99.9 → 3; 100 is drawn at 4.5.
func nines(p float64) float64 {
	if p >= 100 {
		return 4.5
	}
	return math.Min(-math.Log10(1-p/100), 4.5)
}
