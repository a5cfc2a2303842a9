"""moto's server, plus the public Deep Learning AMI parameters AWS publishes in every region.

The Gpu stack reads its image from the public SSM parameter
/aws/service/deeplearning/ami/x86_64/<ami-type>/latest/ami-id (an
AWS::SSM::Parameter::Value<AWS::EC2::Image::Id> template parameter). AWS serves these to every
account ("Query the DLAMI ID with AWS Systems Manager", AWS Deep Learning AMIs developer guide);
moto 5.2.1 ships only the Amazon Linux, ECS and global-infrastructure trees
(moto/ssm/models.py ParameterDict._check_loading_status), and refuses put-parameter under /aws/
as AWS does. This adds the DLAMI tree the same lazy way moto loads its own public trees, with an
AMI moto registers in every region. Run as: python3 moto_with_public_dlami.py -H HOST -p PORT
"""
import sys

from moto.core.utils import utcnow
from moto.ssm import models

DLAMI_PREFIX = "/aws/service/deeplearning/ami/x86_64/"
DLAMI_TYPES = ["base-oss-nvidia-driver-gpu-ubuntu-22.04"]
# An image in moto's default catalogue (moto/ec2/resources/amis.json.gz), so a launch could use it.
MOTO_IMAGE_ID = "ami-03cf127a"

_moto_loading = models.ParameterDict._check_loading_status


def _check_loading_status(self, key):
    _moto_loading(self, key)
    if str(key or "").startswith(DLAMI_PREFIX) and not getattr(self, "dlami_loaded", False):
        self.dlami_loaded = True
        for ami_type in DLAMI_TYPES:
            name = f"{DLAMI_PREFIX}{ami_type}/latest/ami-id"
            # As moto's own loaders do: bypass ParameterDict.__getitem__ (it would recurse here).
            super(models.ParameterDict, self).__getitem__(name).append(
                models.Parameter(
                    account_id=self.account_id,
                    name=name,
                    value=MOTO_IMAGE_ID,
                    parameter_type="String",
                    description=None,
                    allowed_pattern=None,
                    keyid=None,
                    last_modified_date=utcnow(),
                    version=1,
                    data_type="aws:ec2:image",
                )
            )


models.ParameterDict._check_loading_status = _check_loading_status

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
