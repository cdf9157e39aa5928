"""Stage 1, archive: every DynamoDB stream record, verbatim, in the raw zone of S3.

``keys`` (pure) names the objects, ``encode`` (pure) turns a batch into gzip JSON
lines, ``writer`` puts them in S3 and quarantines what cannot be archived.
"""
