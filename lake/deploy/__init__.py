"""Deploying the lake to AWS: ``template.yaml`` rendered from the wiring (``lake/wiring.py``),
least-privilege IAM built from each function's and job's declared access, and
``lake template`` / ``lake deploy`` (``command.py``). Rendering is pure; the AWS calls of
``lake deploy`` go through ``lake.aws.stack``."""
