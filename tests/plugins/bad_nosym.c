/* A shared library that is not a task plugin: it lacks evo_task_plugin_entry (tests/test_tasks.c, plugin suite). */
int evo_test_not_a_task(void);
int evo_test_not_a_task(void) { return 42; }
