# A Nomad job running one machine with the raw_exec driver (use "exec" for Nomad's isolation; the
# machine file and the vmlaunch binary must be reachable from the task). Nomad places and restarts
# the machine; vmlaunch is the task, in the foreground, its console in the task's stdout log.
job "vm-web" {
  datacenters = ["dc1"]
  type        = "service"

  group "vm" {
    restart {
      attempts = 3
      interval = "10m"
      delay    = "15s"
      mode     = "fail"
    }

    task "web" {
      driver = "raw_exec"

      config {
        command = "/usr/local/bin/vmlaunch"
        args    = ["up", "--name", "web-${NOMAD_ALLOC_INDEX}", "--stop-timeout", "60", "/etc/vmlaunch/web.yaml"]
      }

      # SIGTERM: the guest's power button and a 60 s grace period; Nomad kills after kill_timeout.
      kill_signal  = "SIGTERM"
      kill_timeout = "90s"

      resources {
        cpu    = 2000
        memory = 1200
      }
    }
  }
}
