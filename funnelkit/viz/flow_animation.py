"""A Plotly animation of points travelling through a 2-D flow: "Watch a flow move".

:func:`flow_animation_figure` turns a :class:`funnelkit.viz.flow_path.FlowPath` into one scatter
plot with a frame per stage, a slider over the stages and Play / Pause buttons. Plotly's browser
code plays the frames and eases the points from one stage to the next, so watching costs a server
nothing after the figure is sent. Points keep one colour throughout: the angle of where they are
in the data, so a reader can follow them through every layer.
"""

import textwrap

import numpy as np
import plotly.graph_objects as go

from .flow_path import FlowPath
from .interactive import CYCLIC, FONT_SIZE, NEUTRAL, TRANSPARENT, angle_colours

FRAME_MS = 1400  # how long Play shows each stage
TRANSITION_MS = 900  # of which the points spend this long moving
PLOT_WIDTH = 0.5  # the share of the figure's width for the plot; the stage's explanation is on the right
NOTE_X = PLOT_WIDTH + 0.08  # where the explanation and the colour bar start
NOTE_CHARS = 40  # characters per line of that explanation


def flow_animation_figure(path, height=540, frame_ms=FRAME_MS, transition_ms=TRANSITION_MS, marker_size=6,
                          title=None):
    """An animated scatter of ``path``'s points, one frame per stage.

    Args:
        path: a :class:`~funnelkit.viz.flow_path.FlowPath` (``flow_path`` or ``round_trip``).
        height: of the whole figure in px, slider and buttons included.
        frame_ms, transition_ms: how long Play stays on each stage, and how much of it the points move.
        title: a line above the step's number and name (default: none), e.g. the model and its iteration.

    Returns:
        a ``plotly.graph_objects.Figure`` with ``frames`` named ``"0"``, ``"1"``, ... and the slider
        and buttons in ``layout.sliders`` and ``layout.updatemenus``.
    """
    if not isinstance(path, FlowPath):
        raise ValueError(f"path must be a FlowPath (funnelkit.viz.flow_path.flow_path or round_trip), "
                         f"got {type(path).__name__}")
    if not path.stages:
        raise ValueError("path has no stages")
    for name, value in (("height", height), ("frame_ms", frame_ms), ("transition_ms", transition_ms)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if transition_ms > frame_ms:
        raise ValueError(f"transition_ms ({transition_ms}) must not exceed frame_ms ({frame_ms})")
    colour = np.degrees(angle_colours(path.data_points))
    last = len(path.stages) - 1
    heading = [f"Step {i} of {last}: {stage.label}" for i, stage in enumerate(path.stages)]
    if title:
        heading = [f"{title}<br>{line}" for line in heading]
    low, high = _view_range(path)
    notes = [_notes(path, i, low, high) for i in range(len(path.stages))]
    first = path.stages[0].points
    fig = go.Figure(
        go.Scatter(
            x=first[:, 0], y=first[:, 1], mode="markers", name="points",
            marker=dict(size=marker_size, color=colour, colorscale=CYCLIC, cmin=-180, cmax=180, showscale=True,
                        line=dict(width=0), colorbar=_colour_bar()),
            hovertemplate="(%{x:.2f}, %{y:.2f})<extra></extra>",
        ),
        frames=[
            go.Frame(name=str(i), data=[go.Scatter(x=stage.points[:, 0], y=stage.points[:, 1])], traces=[0],
                     layout=dict(title=_title(heading[i]), annotations=notes[i]))
            for i, stage in enumerate(path.stages)
        ],
    )
    _add_latent_line(fig, path, low, high)
    names = _axis_names(path)
    fig.update_xaxes(range=[low, high], title_text=names[0], zeroline=False, constrain="domain",
                     domain=[0, PLOT_WIDTH], tickfont=dict(size=FONT_SIZE), title_font=dict(size=FONT_SIZE))
    fig.update_yaxes(range=[low, high], title_text=names[1], zeroline=False, scaleanchor="x", scaleratio=1,
                     constrain="domain", tickfont=dict(size=FONT_SIZE), title_font=dict(size=FONT_SIZE))
    fig.update_layout(
        title=_title(heading[0]),
        font=dict(size=FONT_SIZE), paper_bgcolor=TRANSPARENT, plot_bgcolor=TRANSPARENT, height=height,
        margin=dict(l=10, r=10, t=70 if title else 50, b=10), showlegend=False, annotations=notes[0],
        updatemenus=[_buttons(frame_ms, transition_ms)],
        sliders=[_slider(path, transition_ms)],
    )
    return fig


def _colour_bar():
    """A horizontal colour bar under the explanation, on the right: what the colours mean."""
    title = dict(text="colour: the angle of each point in the data (°)", side="top", font=dict(size=FONT_SIZE))
    return dict(title=title, tickvals=[-180, -90, 0, 90, 180], tickfont=dict(size=FONT_SIZE), thickness=14,
                orientation="h", x=NOTE_X, xanchor="left", len=0.4, y=0.12, yanchor="bottom")


def _title(text):
    """The whole title (a frame's layout replaces it whole: a frame with only its text would lose the font)."""
    return dict(text=text, font=dict(size=FONT_SIZE + 2, weight="bold"), x=0.0, xanchor="left")


def _view_range(path):
    """One range for both axes and every frame (so motion is motion), holding nearly all points."""
    everything = np.concatenate([stage.points for stage in path.stages])
    reach = float(np.percentile(np.abs(everything), 99.5))
    reach = max(reach, 1.0) * 1.12
    return -reach, reach


def _axis_names(path):
    if path.dropped is None:
        return "1st coordinate", "2nd coordinate"
    names = ["1st coordinate", "2nd coordinate"]
    names[path.dropped] += " (x₋: the funnel drops it)"
    names[1 - path.dropped] += " (x₊: kept, becomes z)"
    return tuple(names)


def _notes(path, index, low, high):
    """The annotations of stage ``index``: where the journey is, what this step did (wrapped, on
    the right of the plot), and the label of the funnel's latent line."""
    stage = path.stages[index]
    way = _way(path, index)
    caption = stage.caption.replace(" | ", "\u00a0|\u00a0")  # a formula is not broken across lines
    text = "<br>".join(textwrap.wrap(caption + ".", NOTE_CHARS))
    notes = [
        dict(x=NOTE_X, y=0.95, xref="paper", yref="paper", xanchor="left", yanchor="top", align="left",
             showarrow=False, text=f"<b>{way}</b><br><br>{text}", font=dict(size=FONT_SIZE + 2)),
    ]
    if path.dropped == 0:
        notes.append(dict(x=0, y=high, text="1-D latent z", showarrow=False, xanchor="left", yanchor="top",
                          font=dict(size=FONT_SIZE)))
    elif path.dropped == 1:
        notes.append(dict(x=low, y=0, text="1-D latent z", showarrow=False, xanchor="left", yanchor="bottom",
                          font=dict(size=FONT_SIZE)))
    return notes


def _way(path, index):
    """Which way the points travel at stage ``index``: out to the data, or back to the latent."""
    out = "Way out: N(0, 1) → data (sampling)"
    back = "Way back: data → latent (encoding)"
    if path.direction == "generate":
        return out
    if path.direction == "encode":
        return back
    data = next(i for i, s in enumerate(path.stages) if s.label == "data")
    return out if index <= data else back


def _add_latent_line(fig, path, low, high):
    """The line where a funnel's 1-D latent lives: its dropped coordinate = 0."""
    if path.dropped is None:
        return
    line = dict(type="line", line=dict(color=NEUTRAL, width=2, dash="dash"), layer="below")
    if path.dropped == 0:
        fig.add_shape(x0=0, x1=0, y0=low, y1=high, **line)
    else:
        fig.add_shape(x0=low, x1=high, y0=0, y1=0, **line)


def _animate(frames, frame_ms, transition_ms):
    return [frames, dict(frame=dict(duration=frame_ms, redraw=True), mode="immediate", fromcurrent=True,
                         transition=dict(duration=transition_ms, easing="cubic-in-out"))]


def _buttons(frame_ms, transition_ms):
    return dict(
        type="buttons", direction="left", x=0.0, xanchor="left", y=0.0, yanchor="top", pad=dict(t=62, r=10),
        showactive=False, font=dict(size=FONT_SIZE),
        buttons=[
            dict(label="▶ Play", method="animate", args=_animate(None, frame_ms, transition_ms)),
            dict(label="❚❚ Pause", method="animate",
                 args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate",
                                    transition=dict(duration=0))]),
        ],
    )


def _slider(path, transition_ms):
    steps = [dict(label=stage.label, method="animate", args=_animate([str(i)], transition_ms, transition_ms))
             for i, stage in enumerate(path.stages)]
    return dict(
        active=0, steps=steps, x=0.18, len=0.78, xanchor="left", y=0.0, yanchor="top", pad=dict(t=52, b=10),
        currentvalue=dict(visible=False), font=dict(size=FONT_SIZE), transition=dict(duration=transition_ms),
    )


__all__ = ["flow_animation_figure"]
