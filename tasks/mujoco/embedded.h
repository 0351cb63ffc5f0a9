/* Internal: files compiled into the library by cmake/embed_files.cmake (the MuJoCo models), so that a binary needs
   no data path at run time. */
#ifndef EVOC_EMBEDDED_H
#define EVOC_EMBEDDED_H

typedef struct {
  const char *name;          /* file name, no directory; NULL ends the table */
  const unsigned char *data; /* size bytes followed by a NUL */
  int size;
} evo_embedded_file;

#endif
