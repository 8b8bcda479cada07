# Sourced by measurement_h200.sh and floor_h200.sh: the FLUX.1-dev-size pipeline they both time, with random
# weights, compiled, at 1024^2, untracked; 8 steps keep each process near a minute.
FLUX=(model=flux1_dev model.weights=random engine=diffusers compile=on
      model.sampling.width=1024 model.sampling.height=1024 model.sampling.num_inference_steps=8
      compile.warmup_steps=4 tracking.enabled=false)
