@echo off
rem millwatch exporter @VERSION@: offline installer for Windows (@PLATFORM@, Python @PYTHON_VERSION@).
rem Run it as administrator from the unzipped folder. Nothing is downloaded: every wheel is in .\wheels.
rem
rem It installs the exporter into "%ProgramFiles%\millwatch-exporter" (a Python venv), writes its
rem configuration to "%ProgramData%\millwatch-exporter\exporter.yaml" with `millwatch-exporter init`,
rem registers the scheduled task "millwatch-exporter" that starts it at boot (as SYSTEM) and starts
rem it again when it stops, opens its TCP port in Windows Firewall, and checks that it answers.
rem
rem Unattended: set MW_MACHINE_ID, MW_NAME, MW_SERIAL_PORT, MW_BAUDRATE, MW_PORT and MW_CENTRAL_HOST
rem before running it; only the values not set are asked. MW_KEEP_CONFIG=1 keeps an existing config.
setlocal EnableExtensions

set "HERE=%~dp0"
set "TARGET=%ProgramFiles%\millwatch-exporter"
set "DATA=%ProgramData%\millwatch-exporter"
set "CONFIG=%DATA%\exporter.yaml"
set "VENV=%TARGET%\venv"
set "PYEXE=%VENV%\Scripts\python.exe"
set "EXE=%VENV%\Scripts\millwatch-exporter.exe"
set "TASK=millwatch-exporter"
set "RULE=millwatch-exporter"
set "PIP_DISABLE_PIP_VERSION_CHECK=1"

net session >nul 2>&1
if errorlevel 1 goto :not_admin

echo.
echo millwatch exporter @VERSION@ - installing from %HERE%
echo.
echo [1/6] Python
rem The Python this bundle's wheels were chosen for; any other Python 3 is tried after it.
set "PY=py -@PYTHON_VERSION@"
%PY% -c "import sys" >nul 2>&1
if errorlevel 1 set "PY=py -3"
%PY% -c "import sys; sys.exit(sys.version_info < (3, 9))" >nul 2>&1
if errorlevel 1 goto :no_python
%PY% -c "import sys; print('      Python ' + sys.version.split()[0] + ' at ' + sys.executable)"

echo [2/6] Exporter into %TARGET%
rem An older install is stopped first so that its files can be replaced.
schtasks /End /TN "%TASK%" >nul 2>&1
taskkill /F /T /IM millwatch-exporter.exe >nul 2>&1
if not exist "%TARGET%" mkdir "%TARGET%"
if exist "%VENV%" rmdir /S /Q "%VENV%"
%PY% -m venv "%VENV%"
if errorlevel 1 goto :failed
"%PYEXE%" -m pip install --quiet --no-index --find-links "%HERE%wheels" @DISTRIBUTION@
if errorlevel 1 goto :pip_failed
copy /Y "%HERE%run-exporter.cmd" "%TARGET%\run-exporter.cmd" >nul
copy /Y "%HERE%setup_helper.py" "%TARGET%\setup_helper.py" >nul
copy /Y "%HERE%UNINSTALL.bat" "%TARGET%\UNINSTALL.bat" >nul
copy /Y "%HERE%exporter.example.yaml" "%TARGET%\exporter.example.yaml" >nul
if not exist "%DATA%" mkdir "%DATA%"
rem ProgramData lets every user read and add files; the configuration (and any token file beside it)
rem and the buffer are for SYSTEM and administrators only (SIDs: the same on every Windows language).
icacls "%DATA%" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F >nul
if errorlevel 1 goto :failed

echo [3/6] Configuration %CONFIG%
if not exist "%CONFIG%" goto :ask
if "%MW_KEEP_CONFIG%"=="1" goto :check_config
choice /C YN /T 60 /D Y /M "      A configuration exists already. Keep it (Y) or write a new one (N)"
if not errorlevel 2 goto :check_config

:ask
echo       Serial ports of this PC:
"%EXE%" ports
if not defined MW_MACHINE_ID set /p "MW_MACHINE_ID=      Machine id (lowercase letters, digits, _ and -; e.g. press_01): "
if not defined MW_NAME set /p "MW_NAME=      Machine name shown on the map [the id]: "
if not defined MW_NAME set "MW_NAME=%MW_MACHINE_ID%"
if not defined MW_SERIAL_PORT set /p "MW_SERIAL_PORT=      Serial port of the sensor (e.g. COM3): "
if not defined MW_BAUDRATE set /p "MW_BAUDRATE=      Baud rate [9600]: "
if not defined MW_BAUDRATE set "MW_BAUDRATE=9600"
if not defined MW_PORT set /p "MW_PORT=      TCP port of the exporter [9817]: "
if not defined MW_PORT set "MW_PORT=9817"
if not defined MW_CENTRAL_HOST set /p "MW_CENTRAL_HOST=      Central millwatch host (its IP address or name): "
"%EXE%" init --output "%CONFIG%" --machine-id "%MW_MACHINE_ID%" --name "%MW_NAME%" --serial-port "%MW_SERIAL_PORT%" --baudrate "%MW_BAUDRATE%" --listen "0.0.0.0:%MW_PORT%" --central-host "%MW_CENTRAL_HOST%" --non-interactive --force
if errorlevel 1 goto :bad_values

:check_config
"%PYEXE%" "%TARGET%\setup_helper.py" check "%CONFIG%"
if errorlevel 1 goto :bad_config
"%PYEXE%" "%TARGET%\setup_helper.py" port "%CONFIG%" > "%TEMP%\millwatch-port.txt"
if errorlevel 1 goto :bad_config
set /p MW_PORT=<"%TEMP%\millwatch-port.txt"
del "%TEMP%\millwatch-port.txt" >nul 2>&1

echo [4/6] Windows Firewall: allow TCP port %MW_PORT% in
netsh advfirewall firewall delete rule name="%RULE%" >nul 2>&1
netsh advfirewall firewall add rule name="%RULE%" description="millwatch exporter /metrics" dir=in action=allow protocol=TCP localport=%MW_PORT% >nul
if errorlevel 1 goto :failed

echo [5/6] Scheduled task "%TASK%": starts at boot, restarts after a stop
powershell -NoProfile -ExecutionPolicy Bypass -File "%HERE%millwatch-task.ps1" -TaskName "%TASK%" -Program "%TARGET%\run-exporter.cmd" -WorkDir "%DATA%"
if errorlevel 1 goto :failed

echo [6/6] Waiting for the exporter to answer
"%PYEXE%" "%TARGET%\setup_helper.py" wait "%CONFIG%" --timeout 60
if errorlevel 1 goto :not_answering
echo.
echo Done. Uninstall with "%TARGET%\UNINSTALL.bat" (as administrator).
endlocal
exit /b 0

:not_admin
echo INSTALL.bat must run as administrator: right-click it and choose "Run as administrator".
goto :fail_exit
:no_python
echo No Python 3.9 or newer found. Install Python @PYTHON_VERSION@ for Windows (64-bit for win_amd64) with
echo the "py" launcher, then run INSTALL.bat again.
goto :fail_exit
:pip_failed
echo The wheels in "%HERE%wheels" do not fit this PC's Python. This bundle is for @PLATFORM@ with
echo Python @PYTHON_VERSION@; build one for this PC on the central host:
echo     millwatch bundle --platform @PLATFORM@ --python-version X.Y -o DIR
goto :fail_exit
:bad_values
echo The values above were refused (see the message). Run INSTALL.bat again.
goto :fail_exit
:bad_config
echo "%CONFIG%" has a problem (see the line above). Fix it or delete it, then run INSTALL.bat again.
goto :fail_exit
:not_answering
echo The exporter did not answer. Its log: "%DATA%\exporter.log"
goto :fail_exit
:failed
echo The step above failed.
:fail_exit
echo Installation NOT complete.
endlocal
exit /b 1
