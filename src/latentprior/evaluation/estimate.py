"""How long a feature pass will take, said before it starts: a short timed batch of the feature network on this
machine, scaled to the images still to extract (the generated ones, and the reference ones unless cached).

    seconds ≈ (n_generated + n_reference) × (time of one probe batch / its size)

The probe is a few test images run through the same extractor (after one warm-up call, which pays for lazy
set-up), so the estimate reflects this machine, its threads and whatever else is running on it. Generating the
samples is not timed: on a CPU the decoder costs a few percent of the Inception network's time.
"""

from __future__ import annotations

import sys
import time

from torch import Tensor

__all__ = ["seconds_per_image", "estimate_message", "announce", "ANNOUNCE_ABOVE_S", "PROBE"]

PROBE = 8  # images in the timed batch
ANNOUNCE_ABOVE_S = 20.0  # a pass estimated shorter than this is not announced


def seconds_per_image(extractor, images: Tensor, probe: int = PROBE) -> float:
    """Seconds per image of ``extractor`` on ``images`` (N, C, H, W) uint8, timed on ``probe`` of them after a
    warm-up call on two."""
    extractor(images[:2])
    batch = images[:probe]
    t0 = time.perf_counter()
    extractor(batch)
    return (time.perf_counter() - t0) / max(1, batch.shape[0])


def estimate_message(per_image: float, n_generated: int, n_reference: int) -> tuple[float, str]:
    """(seconds, one line) for a pass over ``n_generated`` samples and ``n_reference`` uncached test images."""
    seconds = per_image * (n_generated + n_reference)
    when = f"about {seconds / 60:.0f} min" if seconds >= 90 else f"about {seconds:.0f} s"
    ref = f" and {n_reference} reference images" if n_reference else " (reference features cached)"
    return seconds, (f"eval: {when} for the features of {n_generated} samples{ref} on this machine "
                     f"({per_image * 1000:.0f} ms per image, timed on {PROBE} test images)")


def announce(extractor, test_images: Tensor, n_generated: int, n_reference: int, *, file=None) -> float:
    """Time a probe batch and print the estimate (to stderr) when the pass will take longer than
    :data:`ANNOUNCE_ABOVE_S`; returns the estimated seconds."""
    seconds, line = estimate_message(seconds_per_image(extractor, test_images), n_generated, n_reference)
    if seconds >= ANNOUNCE_ABOVE_S:
        print(line, file=file or sys.stderr, flush=True)
    return seconds
