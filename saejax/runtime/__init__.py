"""What a run needs from the machine, apart from the math: the compile caches
(``compile_cache``), the devices and processes (``devices``, ``hosts``), when to save
(``clock``) and what the person sees while it runs (``progress``)."""
