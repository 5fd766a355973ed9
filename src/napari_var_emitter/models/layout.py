"""The DECODE channel layout that every model outputs at every scale.

Each scale's output is a tensor ``(B, C, H * f, W * f)`` with ``C`` = 6, or 10 with sigma channels:

====  ==========  =====================================================================================
idx   name        meaning (activation applied by the model)
====  ==========  =====================================================================================
0     p           logit of "an emitter's centre lies in this output pixel" (raw, no activation)
1     photons     photons / ``photon_scale``, in [0, 1] (sigmoid)
2     dx          x offset of the emitter from this output pixel's centre, in output pixels, (-1, 1) (tanh)
3     dy          y offset, likewise
4     z           z / ``z_scale_nm``, (-1, 1) (tanh)
5     bg          background (photons per camera pixel) / ``bg_scale``, in [0, 1] (sigmoid)
6-9   sigma_*     predicted standard deviations of photons, dx, dy, z in the units above (softplus + eps)
====  ==========  =====================================================================================
"""

from __future__ import annotations

P, PHOTONS, DX, DY, Z, BG = range(6)
SIG_PHOTONS, SIG_X, SIG_Y, SIG_Z = range(6, 10)
N_CHANNELS_BASIC = 6
N_CHANNELS_SIGMA = 10
CHANNEL_NAMES = ("p", "photons", "dx", "dy", "z", "bg", "sigma_photons", "sigma_x", "sigma_y", "sigma_z")
