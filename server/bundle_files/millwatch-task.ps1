# Registers the scheduled task that runs the millwatch exporter (called by INSTALL.bat).
# At boot, as SYSTEM, with no time limit (the default of 72 h would stop the exporter after three
# days); run-exporter.cmd starts the exporter again whenever it stops, and the task itself is
# restarted every minute should it fail. The task is started at once.
param(
    [Parameter(Mandatory = $true)][string]$TaskName,
    [Parameter(Mandatory = $true)][string]$Program,
    [Parameter(Mandatory = $true)][string]$WorkDir
)
$ErrorActionPreference = 'Stop'
$action = New-ScheduledTaskAction -Execute $Program -WorkingDirectory $WorkDir
$trigger = New-ScheduledTaskTrigger -AtStartup
$settings = New-ScheduledTaskSettingsSet -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) `
    -ExecutionTimeLimit ([TimeSpan]::Zero) -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries `
    -StartWhenAvailable -MultipleInstances IgnoreNew
$principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger -Settings $settings `
    -Principal $principal -Description 'millwatch exporter: serial sensor readings for the central host' `
    -Force | Out-Null
Start-ScheduledTask -TaskName $TaskName
