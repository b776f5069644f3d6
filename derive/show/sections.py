"""The sections of a lesson, in page order. A module of their own, so that the command line
offers them (`derive lesson --sections`) without loading the lesson's machinery."""

SECTIONS = (
    "intuition",
    "loss",
    "gradient",
    "backprop",
    "update",
    "table",
    "claims",
    "descent",
    "schedule",
    "rates",
    "batch",
    "optimizers",
    "landscape",
    "exercises",
    "summary",
    "glossary",
)
