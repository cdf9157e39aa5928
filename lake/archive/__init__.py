"""Stage 1, archive: every DynamoDB stream record, verbatim, in the raw zone of S3.

``keys`` (pure) names the objects, ``line`` (pure) declares their JSON line (its writer and
readers), ``encode`` (pure) turns a batch into gzip objects of lines, ``writer`` puts them in
S3 and quarantines what cannot be archived.
"""
