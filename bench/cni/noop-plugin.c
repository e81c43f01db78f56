// A CNI plugin that does nothing, as fast as a process can: the bench's
// floor. Timed through cnitool like the real plugins, it shows what every
// call pays before any plugin work — cnitool's start, libcni loading the
// config and writing its result cache, one fork+exec of a plugin.
//
// ADD prints a minimal result (one interface, one address) in the config's
// CNI version, 1.0.0, which the bench uses; every other verb prints nothing.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  char buf[1 << 16];
  while (read(STDIN_FILENO, buf, sizeof buf) > 0) {
  }
  const char *cmd = getenv("CNI_COMMAND");
  const char *netns = getenv("CNI_NETNS");
  if (cmd && strcmp(cmd, "ADD") == 0) {
    printf("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\",\"sandbox\":\"%s\"}],"
           "\"ips\":[{\"address\":\"192.0.2.1/24\",\"interface\":0}]}\n",
           netns ? netns : "");
  }
  return 0;
}
