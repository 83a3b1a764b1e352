"""Studies as data: a YAML file of arms, a grid and an evaluation, run as ordinary ``dd-harness``
jobs (:mod:`.spec` reads the file, :mod:`.jobs` expands it, :mod:`.executors` runs the commands,
:mod:`.state` says where each job stands, :mod:`.runner` puts them together, :mod:`.report`
reads the results back). The schema is docs/STUDIES.md."""
