"""``python -m models auto``: search families and their main settings on a user's own data.

``space`` says what a trial may try (one function per family, keyed by the family's name in
``models.registry.FAMILIES``); ``split`` holds back part of valid for selection and keeps the
rest for the report; ``trial`` trains one candidate into a solution folder and times it in the
sandbox; ``worker`` runs Optuna trials, a task of the execution engine (``harness.execution``);
``search`` runs the workers on the engine, enforces the wall-clock budget and shows progress;
``blend`` proposes an ensemble of the best trials after them; ``refit`` fits the choice again on train and the selection part; ``output``
writes the chosen solution folder atomically with its run record; ``cli`` is the command.
"""
