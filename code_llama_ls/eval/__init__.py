"""``code-llama-ls eval``: completion tasks cut from the user's own repository, run through the
server's pipeline with each variant (context on and off; PSM and SPM where the model infills), so a
model or a setting is chosen on the code it will complete.

``tasks`` cuts the tasks, ``run`` calls the pipeline, ``cache`` keeps each result so an interrupted
run resumes, ``metrics`` scores, ``report`` prints the table and the HTML page, ``cli`` wires them.
"""
